package sqlite

import (
	"context"
	"errors"
	"fmt"
)

// CounterStore keeps running totals per task (table task_counters).
type CounterStore struct{ db *DB }

// Counters returns the database's task counters.
func (d *DB) Counters() *CounterStore { return &CounterStore{db: d} }

// Add adds n to the task's counter name and returns the new total, in one
// statement, so concurrent calls of one task never lose a count.
func (s *CounterStore) Add(ctx context.Context, task, name string, n int64) (int64, error) {
	if task == "" || name == "" {
		return 0, errors.New("task counter: task and name are required")
	}
	var total int64
	err := s.db.sql.QueryRowContext(ctx,
		`INSERT INTO task_counters (task, name, value) VALUES (?, ?, ?)
		 ON CONFLICT (task, name) DO UPDATE SET value = value + excluded.value
		 RETURNING value`, task, name, n).Scan(&total)
	if err != nil {
		return 0, fmt.Errorf("task counter %s/%s: %w", task, name, err)
	}
	return total, nil
}
