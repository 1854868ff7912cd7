package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wardenmcp/warden/internal/pin"
)

// PinStore is the pin.Store kept in the database's tool_pins table.
type PinStore struct {
	db *DB
}

// Pins returns the database's tool pin store.
func (d *DB) Pins() *PinStore { return &PinStore{db: d} }

var _ pin.Store = (*PinStore)(nil)

const pinColumns = `upstream, name, state, digest, title, description, input_schema, output_schema,
	annotations, first_seen_ns, approved_ns, pending_digest, pending_title, pending_description,
	pending_input_schema, pending_output_schema, pending_annotations, findings`

// Get implements pin.Store.
func (s *PinStore) Get(ctx context.Context, upstream, name string) (pin.Pin, bool, error) {
	row := s.db.sql.QueryRowContext(ctx, `SELECT `+pinColumns+` FROM tool_pins WHERE upstream = ? AND name = ?`, upstream, name)
	p, err := scanPin(row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return pin.Pin{}, false, nil
	case err != nil:
		return pin.Pin{}, false, fmt.Errorf("get pin %s.%s: %w", upstream, name, err)
	}
	return p, true, nil
}

// Put implements pin.Store.
func (s *PinStore) Put(ctx context.Context, p pin.Pin) error {
	if err := pin.ValidatePin(p); err != nil {
		return err
	}
	findings, err := jsonColumn(p.Findings, len(p.Findings) == 0)
	if err != nil {
		return fmt.Errorf("put pin %s: findings: %w", p.Ref(), err)
	}
	var pending pin.Definition
	if p.Pending != nil {
		pending = *p.Pending
	}
	_, err = s.db.sql.ExecContext(ctx, `INSERT INTO tool_pins (`+pinColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (upstream, name) DO UPDATE SET
			state = excluded.state, digest = excluded.digest, title = excluded.title,
			description = excluded.description, input_schema = excluded.input_schema,
			output_schema = excluded.output_schema, annotations = excluded.annotations,
			first_seen_ns = excluded.first_seen_ns, approved_ns = excluded.approved_ns,
			pending_digest = excluded.pending_digest, pending_title = excluded.pending_title,
			pending_description = excluded.pending_description,
			pending_input_schema = excluded.pending_input_schema,
			pending_output_schema = excluded.pending_output_schema,
			pending_annotations = excluded.pending_annotations, findings = excluded.findings`,
		p.Upstream, p.Name, string(p.State), p.Digest, p.Definition.Title, p.Definition.Description,
		blob(p.Definition.InputSchema), blob(p.Definition.OutputSchema), blob(p.Definition.Annotations),
		nullNanos(p.FirstSeen), nullNanos(p.ApprovedAt), p.PendingDigest, pending.Title, pending.Description,
		blob(pending.InputSchema), blob(pending.OutputSchema), blob(pending.Annotations), findings)
	if err != nil {
		return fmt.Errorf("put pin %s: %w", p.Ref(), err)
	}
	return nil
}

// List implements pin.Store.
func (s *PinStore) List(ctx context.Context) ([]pin.Pin, error) {
	rows, err := s.db.sql.QueryContext(ctx, `SELECT `+pinColumns+` FROM tool_pins ORDER BY upstream, name`)
	if err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	out, err := collect(rows, scanPin)
	if err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	return out, nil
}

func scanPin(row rowScanner) (pin.Pin, error) {
	var (
		p                   pin.Pin
		state               string
		firstSeen, approved sql.NullInt64
		pending             pin.Definition
		findings            sql.NullString
	)
	// Schemas scan as []byte, which takes NULL as nil.
	if err := row.Scan(&p.Upstream, &p.Name, &state, &p.Digest, &p.Definition.Title, &p.Definition.Description,
		(*[]byte)(&p.Definition.InputSchema), (*[]byte)(&p.Definition.OutputSchema),
		(*[]byte)(&p.Definition.Annotations), &firstSeen, &approved, &p.PendingDigest, &pending.Title,
		&pending.Description, (*[]byte)(&pending.InputSchema), (*[]byte)(&pending.OutputSchema),
		(*[]byte)(&pending.Annotations), &findings); err != nil {
		return pin.Pin{}, err
	}
	p.State = pin.State(state)
	p.Definition.Upstream, p.Definition.Name = p.Upstream, p.Name
	p.FirstSeen, p.ApprovedAt = fromNanos(firstSeen.Int64), fromNanos(approved.Int64)
	if p.PendingDigest != "" {
		pending.Upstream, pending.Name = p.Upstream, p.Name
		p.Pending = &pending
	}
	if findings.Valid {
		if err := json.Unmarshal([]byte(findings.String), &p.Findings); err != nil {
			return pin.Pin{}, fmt.Errorf("pin %s: findings column: %w", p.Ref(), err)
		}
	}
	// A row edited outside Warden must not read as a valid pin.
	if err := pin.ValidatePin(p); err != nil {
		return pin.Pin{}, fmt.Errorf("stored %w", err)
	}
	return p, nil
}
