package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/wire"
)

// ServeStdio serves one client over newline-delimited JSON-RPC on r and w
// (a desktop host that spawns Warden) until the client closes its input or
// ctx is done.
func (g *Gateway) ServeStdio(ctx context.Context, r io.Reader, w io.Writer) error {
	conn := newLineConn(r, w, g.cfg.Limits.MaxMessageBytes, g.cfg.Limits.MaxDepth)
	ss, err := g.stateful.Connect(ctx, connTransport{conn}, nil)
	if err != nil {
		return fmt.Errorf("starting stdio session: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = ss.Close() })
	defer stop()
	err = ss.Wait()
	g.relay.closeSession(ss)
	if errors.Is(err, io.EOF) || errors.Is(err, mcp.ErrConnectionClosed) {
		return nil
	}
	return err
}

type connTransport struct{ c mcp.Connection }

func (t connTransport) Connect(context.Context) (mcp.Connection, error) { return t.c, nil }

// lineConn is a JSON-RPC connection over lines that answers malformed,
// oversized and batched messages itself, so they never reach the protocol
// layer and never end the session.
type lineConn struct {
	w        io.Writer
	maxBytes int64
	maxDepth int

	wmu     sync.Mutex
	pending map[jsonrpc.ID]bool // requests read and not yet answered
	idle    *sync.Cond          // signalled when pending empties
	msgs    chan jsonrpc.Message
	errc    chan error
	done    chan struct{}
	once    sync.Once
}

func newLineConn(r io.Reader, w io.Writer, maxBytes int64, maxDepth int) *lineConn {
	c := &lineConn{w: w, maxBytes: maxBytes, maxDepth: maxDepth, pending: map[jsonrpc.ID]bool{},
		msgs: make(chan jsonrpc.Message), errc: make(chan error, 1), done: make(chan struct{})}
	c.idle = sync.NewCond(&c.wmu)
	go c.readLoop(bufio.NewReaderSize(r, 64<<10))
	return c
}

func (c *lineConn) readLoop(br *bufio.Reader) {
	for {
		line, tooLong, err := readLine(br, c.maxBytes)
		if err != nil {
			// A client that closes its input after its last request still
			// gets the answers to everything it asked.
			c.wmu.Lock()
			for len(c.pending) > 0 && !c.isClosed() {
				c.idle.Wait()
			}
			c.wmu.Unlock()
			c.errc <- err
			return
		}
		if tooLong {
			c.reply(nil, -32600, fmt.Sprintf("message exceeds the limit of %d bytes", c.maxBytes))
			continue
		}
		if len(line) == 0 {
			continue
		}
		if err := wire.Check(line, c.maxDepth); err != nil {
			c.reply(wire.ID(line), wire.Code(err), err.Error())
			continue
		}
		msg, err := jsonrpc.DecodeMessage(line)
		if err != nil {
			c.reply(wire.ID(line), -32600, "invalid JSON-RPC message")
			continue
		}
		if req, ok := msg.(*jsonrpc.Request); ok && req.IsCall() {
			c.wmu.Lock()
			c.pending[req.ID] = true
			c.wmu.Unlock()
		}
		select {
		case c.msgs <- msg:
		case <-c.done:
			return
		}
	}
}

// readLine reads one line, discarding the rest of a line over max bytes.
func readLine(br *bufio.Reader, max int64) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if int64(len(line)+len(chunk)) > max {
			tooLong = true
		} else {
			line = append(line, chunk...)
		}
		switch {
		case err == nil:
			return trimEOL(line), tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0 && !tooLong:
			return trimEOL(line), false, nil
		default:
			return nil, false, err
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func (c *lineConn) reply(id []byte, code int64, msg string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, _ = c.w.Write(append(wire.ErrorResponse(id, code, msg), '\n'))
}

func (c *lineConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case m := <-c.msgs:
		return m, nil
	case err := <-c.errc:
		return nil, err
	case <-c.done:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *lineConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	b, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		return fmt.Errorf("encoding message: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.w.Write(append(b, '\n'))
	if resp, ok := msg.(*jsonrpc.Response); ok && c.pending[resp.ID] {
		delete(c.pending, resp.ID)
		if len(c.pending) == 0 {
			c.idle.Broadcast()
		}
	}
	return err
}

func (c *lineConn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *lineConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.wmu.Lock()
		c.idle.Broadcast()
		c.wmu.Unlock()
	})
	return nil
}

func (c *lineConn) SessionID() string { return "" }
