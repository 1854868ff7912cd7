package main

import (
	"fmt"
	"io"
	"log/slog"
	"os/user"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/gateway"
	"github.com/wardenmcp/warden/internal/seal"
)

// loadGateway reads the configuration and builds the gateway it describes.
func loadGateway(configPath string, logOut io.Writer, level slog.Level) (*gateway.Gateway, *config.Config, *slog.Logger, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, nil, nil, &exitError{exitUsage, err}
	}
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level}))
	sealer, err := seal.LoadOrCreate(cfg.StateKeyFile, seal.Options{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("request-state key: %w", err)
	}
	principal := gateway.Principal{ID: "local"}
	if u, err := user.Current(); err == nil {
		principal.ID = "local:" + u.Username
	}
	g, err := gateway.New(gateway.Options{Config: cfg, Logger: logger, Sealer: sealer, Principal: principal})
	if err != nil {
		return nil, nil, nil, err
	}
	return g, cfg, logger, nil
}

func logLevel(verbose bool) slog.Level {
	if verbose {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
