package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// OpenPool opens a connection pool for the connector. Its errors never
// contain the DSN.
func OpenPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	if dsn == "" {
		return nil, errors.New("empty DSN")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error would quote the connection string.
		return nil, errors.New("the DSN is not a valid PostgreSQL connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, errors.New("cannot create the connection pool")
	}
	return pool, nil
}

// Serve runs the connector on transport until the client disconnects or ctx
// ends: it opens a pool on dsn, refuses to start unless [Preflight] passes,
// and serves the tools enabled in cfg.
func Serve(ctx context.Context, cfg Config, dsn string, transport mcp.Transport, logger *slog.Logger) error {
	pool, err := OpenPool(ctx, dsn)
	if err != nil {
		return fmt.Errorf("postgres connector: %w", err)
	}
	defer pool.Close()
	if err := Preflight(ctx, pool, cfg); err != nil {
		return fmt.Errorf("postgres connector: %w", err)
	}
	srv, err := NewServer(cfg, pool, logger)
	if err != nil {
		return err
	}
	logger.Info("postgres connector serving", "tools", cfg.WithDefaults().Tools)
	if err := srv.Run(ctx, transport); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("postgres connector: %w", err)
	}
	return nil
}
