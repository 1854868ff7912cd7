package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// ErrLogClosed is returned by Append after Close.
var ErrLogClosed = errors.New("audit log is closed")

// Options tune a Log. Zero values take the defaults given per field.
type Options struct {
	// CheckpointEvery is how many records are written between two signed
	// checkpoints. 0 means 1000.
	CheckpointEvery int
	// CheckpointInterval is how often records not yet covered by a
	// checkpoint get one, however few they are. 0 means one minute.
	CheckpointInterval time.Duration
	// QueueSize is how many appends may wait for the writer before Append
	// blocks (backpressure). 0 means 8192.
	QueueSize int
	// MaxBatch is the most records written in one transaction. 0 means 1024.
	MaxBatch int
	// EnqueueDelay is how long records added with Enqueue may wait for an
	// Append to share its commit before they are written on their own.
	// 0 means 20ms.
	EnqueueDelay time.Duration
	// Logger receives write failures. Nil discards them.
	Logger *slog.Logger
	// Now is the clock for record and checkpoint times. Nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.CheckpointEvery < 0 || o.CheckpointInterval < 0 || o.QueueSize < 0 || o.MaxBatch < 0 || o.EnqueueDelay < 0 {
		return o, errors.New("audit options: negative values are not allowed")
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 1000
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = time.Minute
	}
	if o.QueueSize == 0 {
		o.QueueSize = 8192
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 1024
	}
	if o.EnqueueDelay == 0 {
		o.EnqueueDelay = 20 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Log appends records to a Store as one hash chain. Appends from many
// goroutines are queued and written by a single writer goroutine, which
// takes everything waiting (up to MaxBatch) into one transaction as soon as
// the previous one commits: one durable commit serves many callers, and no
// caller of Append waits on a timer. Records added with Enqueue, which no
// caller waits for, are held until the next Append's commit or for
// EnqueueDelay at most, so that they do not cost a disk flush of their own. One Log per store is the intended use; if another
// writer extends the chain first, the store refuses the batch (ErrConflict)
// and the Log chains it again onto the new head, a few times at most.
type Log struct {
	store  Store
	signer ed25519.PrivateKey
	keyID  string
	opts   Options

	// mu is held for reading while sending to queue and for writing to
	// close, so no request can enter the queue after the writer drained it.
	mu     sync.RWMutex
	closed bool
	queue  chan *appendRequest
	stop   chan struct{}
	done   chan struct{}

	// Owned by the writer goroutine (and by Open before it starts).
	headKnown       bool
	headSeq         uint64
	headHash        string
	sinceCheckpoint int
	closeErr        error
}

type appendRequest struct {
	rec  Record
	enc  encodedRecord     // rec's encoding, made by the caller
	done chan appendResult // buffered: the writer never blocks on a caller
	// queued: added with Enqueue, so no caller waits for it.
	queued bool
}

type appendResult struct {
	seq uint64
	err error
}

// Open starts a Log over store, signing checkpoints with signer. It records
// the signer's public key in the store and reads the chain's head; a head
// record that does not match its own hash is refused, since extending it
// would hide the damage.
func Open(store Store, signer ed25519.PrivateKey, opts Options) (*Log, error) {
	if store == nil {
		return nil, errors.New("open audit log: no store")
	}
	if len(signer) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("open audit log: signing key has %d bytes, want an Ed25519 private key", len(signer))
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	pub := signer.Public().(ed25519.PublicKey)
	l := &Log{
		store:  store,
		signer: signer,
		keyID:  KeyID(pub),
		opts:   opts,
		queue:  make(chan *appendRequest, opts.QueueSize),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if err := store.PutKey(context.Background(), l.keyID, pub); err != nil {
		return nil, fmt.Errorf("open audit log: record public key: %w", err)
	}
	if err := l.loadHead(context.Background()); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	go l.run()
	return l, nil
}

// Append adds rec to the chain and returns its seq once it is durable. The
// log sets Seq, Prev and Hash; a zero Time becomes now. When the queue is
// full Append waits, until ctx ends. Any error means the record may not be
// stored, and the caller must fail closed; after ctx ends while waiting for
// the write, the record may still be stored.
func (l *Log) Append(ctx context.Context, rec Record) (uint64, error) {
	req, err := l.enqueue(ctx, rec, false)
	if err != nil {
		return 0, err
	}
	select {
	case res := <-req.done:
		return res.seq, res.err
	case <-ctx.Done():
		return 0, fmt.Errorf("audit append: waiting for the write: %w", ctx.Err())
	}
}

// Enqueue adds rec to the chain without waiting for it to be durable: it
// returns once the record is queued, and it is written with the next batch.
// It is for records whose caller has nothing to withhold, such as the
// outcome of a call already answered; a write that fails later is reported
// to the Logger. When the queue is full Enqueue waits, until ctx ends.
func (l *Log) Enqueue(ctx context.Context, rec Record) error {
	_, err := l.enqueue(ctx, rec, true)
	return err
}

// enqueue encodes rec and queues it for the writer.
func (l *Log) enqueue(ctx context.Context, rec Record, queued bool) (*appendRequest, error) {
	r, err := normalize(rec)
	if err != nil {
		return nil, err
	}
	if r.Time.IsZero() {
		r.Time = l.opts.Now().Round(0).UTC()
		if err := checkTime(r.Time); err != nil {
			return nil, fmt.Errorf("audit clock: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit append: %w", err)
	}
	enc, err := r.encode()
	if err != nil {
		return nil, err
	}
	req := &appendRequest{rec: r, enc: enc, done: make(chan appendResult, 1), queued: queued}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrLogClosed
	}
	select {
	case l.queue <- req:
		return req, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("audit append: queue full: %w", ctx.Err())
	}
}

// Close writes what is queued, then a final checkpoint over any records not
// yet covered by one, and stops the writer. It does not close the store.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	return l.closeErr
}

func (l *Log) run() {
	defer close(l.done)
	ticker := time.NewTicker(l.opts.CheckpointInterval)
	defer ticker.Stop()
	// batch holds, between commits, the queued records waiting for an
	// Append or for flush.
	batch := make([]*appendRequest, 0, l.opts.MaxBatch)
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	for {
		select {
		case req := <-l.queue:
			held := len(batch)
			batch = l.collect(append(batch, req))
			if len(batch) < l.opts.MaxBatch && allQueued(batch[held:]) {
				if held == 0 {
					flush.Reset(l.opts.EnqueueDelay)
				}
				continue
			}
			flush.Stop()
			l.commit(batch, false)
			batch = batch[:0]
		case <-flush.C:
			l.commit(batch, false)
			batch = batch[:0]
		case <-ticker.C:
			if len(batch) > 0 || l.sinceCheckpoint > 0 {
				flush.Stop()
				l.commit(batch, true)
				batch = batch[:0]
			}
		case <-l.stop:
			flush.Stop()
			var errs []error // Close reports every write that failed, not only the last
			for len(batch) > 0 || len(l.queue) > 0 {
				batch = l.collect(batch)
				errs = append(errs, l.commit(batch, false))
				batch = batch[:0]
			}
			if l.sinceCheckpoint > 0 || !l.headKnown {
				errs = append(errs, l.commit(nil, true))
			}
			l.closeErr = errors.Join(errs...)
			return
		}
	}
}

// allQueued reports whether no caller waits for any of reqs.
func allQueued(reqs []*appendRequest) bool {
	for _, r := range reqs {
		if !r.queued {
			return false
		}
	}
	return true
}

// collect adds to batch whatever is already queued, up to MaxBatch.
func (l *Log) collect(batch []*appendRequest) []*appendRequest {
	for len(batch) < l.opts.MaxBatch {
		select {
		case req := <-l.queue:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// conflictRetries is how many times a batch refused with ErrConflict (another
// writer extended the chain first) is chained again onto the new head.
const conflictRetries = 3

// commit chains the batch onto the head, adds the checkpoints that fall due
// (and one more when checkpoint is set and records are unsigned), writes it
// all in one store transaction and answers every caller.
func (l *Log) commit(batch []*appendRequest, checkpoint bool) error {
	ctx := context.Background() // shared by many callers: no single caller may cancel it
	for attempt := 0; ; attempt++ {
		if err := l.loadHead(ctx); err != nil {
			err = fmt.Errorf("audit append: %w", err)
			l.fail(batch, err)
			return err
		}
		c, err := l.chain(batch, checkpoint)
		if err != nil {
			l.fail(batch, err)
			return err
		}
		if len(c.records) == 0 {
			return nil
		}
		err = l.store.Append(ctx, c.records)
		if err == nil {
			l.headSeq, l.headHash, l.sinceCheckpoint = c.seq, c.hash, c.since
			for i, req := range batch {
				req.done <- appendResult{seq: c.seqs[i]}
			}
			return nil
		}
		// The write may or may not have landed: read the head again before
		// the next batch rather than guess.
		l.headKnown = false
		if errors.Is(err, ErrConflict) && attempt < conflictRetries {
			continue // nothing was written: chain the batch onto the new head
		}
		err = fmt.Errorf("audit append: records from %d: %w", c.records[0].Seq, err)
		l.fail(batch, err)
		return err
	}
}

// chained is a batch linked onto the head, ready to store.
type chained struct {
	records []Record // the batch's records with their checkpoints
	seqs    []uint64 // the seq of each request's record
	seq     uint64   // the new head
	hash    string
	since   int // records after the last checkpoint, at the new head
}

// chain links the batch's records onto the head known to the writer.
func (l *Log) chain(batch []*appendRequest, checkpoint bool) (chained, error) {
	c := chained{
		records: make([]Record, 0, len(batch)+1+len(batch)/l.opts.CheckpointEvery),
		seqs:    make([]uint64, len(batch)),
		seq:     l.headSeq,
		hash:    l.headHash,
		since:   l.sinceCheckpoint,
	}
	link := func(r Record, enc encodedRecord) {
		r.Seq, r.Prev = c.seq+1, c.hash
		r.Hash = enc.hash(r.Prev, r.Seq)
		c.records = append(c.records, r)
		c.seq, c.hash = r.Seq, r.Hash
	}
	addCheckpoint := func() error {
		t := l.opts.Now().Round(0).UTC()
		sig := ed25519.Sign(l.signer, CheckpointMessage(c.seq, c.hash, t))
		cp := Record{
			V: SchemaVersion, Time: t, Kind: KindCheckpoint,
			Checkpoint: &Checkpoint{HeadSeq: c.seq, Head: c.hash, KeyID: l.keyID, Sig: hex.EncodeToString(sig)},
		}
		enc, err := cp.encode()
		if err != nil {
			return err
		}
		link(cp, enc)
		c.since = 0
		return nil
	}
	for i, req := range batch {
		link(req.rec, req.enc)
		c.seqs[i] = c.seq
		if c.since++; c.since >= l.opts.CheckpointEvery {
			if err := addCheckpoint(); err != nil {
				return c, err
			}
		}
	}
	if checkpoint && c.since > 0 {
		if err := addCheckpoint(); err != nil {
			return c, err
		}
	}
	return c, nil
}

// fail answers every caller in batch with err, and logs it: records
// queued by Enqueue have no caller waiting to hear of it.
func (l *Log) fail(batch []*appendRequest, err error) {
	if len(batch) > 0 {
		l.opts.Logger.Error("audit write failed", "records", len(batch), "err", err)
	}
	for _, req := range batch {
		req.done <- appendResult{err: err}
	}
}

// loadHead reads the chain's head and how many records follow the last
// checkpoint, unless the writer already knows them.
func (l *Log) loadHead(ctx context.Context) error {
	if l.headKnown {
		return nil
	}
	last, err := l.store.Last(ctx)
	if errors.Is(err, ErrNoRecords) {
		l.headSeq, l.headHash, l.sinceCheckpoint, l.headKnown = 0, GenesisHash, 0, true
		return nil
	}
	if err != nil {
		return fmt.Errorf("read chain head: %w", err)
	}
	h, err := last.ComputeHash()
	if err != nil {
		return fmt.Errorf("read chain head: %w", err)
	}
	if h != last.Hash {
		return fmt.Errorf("chain head record %d does not match its hash: the log was altered; run warden audit verify", last.Seq)
	}
	since := last.Seq
	cps, err := l.store.Query(ctx, Filter{Kind: KindCheckpoint, Newest: true, Limit: 1})
	if err != nil {
		return fmt.Errorf("find last checkpoint: %w", err)
	}
	if len(cps) == 1 {
		since = last.Seq - cps[0].Seq
	}
	l.headSeq, l.headHash, l.sinceCheckpoint, l.headKnown = last.Seq, last.Hash, int(since), true
	return nil
}
