package gateway

import (
	"context"
	"encoding/json"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/pin"
)

// pinned returns the tools of an upstream listing that may be exposed: the
// first definition Warden saw of each tool is pinned, and a tool whose
// definition later changes is quarantined (hidden and uncallable) until an
// operator approves the change (`warden tools diff`, `warden tools
// approve`). If the pins cannot be checked, no tool of the upstream is
// exposed.
func (g *Gateway) pinned(ctx context.Context, up *upstream, tools []*mcp.Tool) []*mcp.Tool {
	if g.pinner == nil || len(tools) == 0 {
		return tools
	}
	defs := make([]pin.Definition, len(tools))
	for i, t := range tools {
		defs[i] = pin.Definition{
			Upstream: up.name, Name: t.Name, Title: t.Title, Description: t.Description,
			InputSchema: rawJSON(t.InputSchema), OutputSchema: rawJSON(t.OutputSchema), Annotations: rawJSON(t.Annotations),
		}
	}
	verdicts, err := g.pinner.Check(ctx, defs)
	if err != nil {
		g.logger.Error("tool pins cannot be checked; the upstream's tools are withheld", "upstream", up.name, "err", err)
		return nil
	}
	allowed := make(map[string]bool, len(verdicts))
	for _, v := range verdicts {
		allowed[v.Name] = v.Allowed
		if v.Change == pin.ChangeUnchanged {
			continue
		}
		if v.Change == pin.ChangeNew && !pin.HasHigh(v.Findings) {
			continue
		}
		g.logger.Warn("tool definition", "upstream", up.name, "tool", v.Name, "change", v.Change, "state", v.State, "findings", len(v.Findings))
		g.recordPin(ctx, up, v)
	}
	kept := tools[:0:0]
	for _, t := range tools {
		if allowed[t.Name] {
			kept = append(kept, t)
		}
	}
	return kept
}

// recordPin writes a quarantine, a revert or a suspicious new tool to the
// audit log.
func (g *Gateway) recordPin(ctx context.Context, up *upstream, v pin.Verdict) {
	if g.audit == nil {
		return
	}
	detail, _ := json.Marshal(map[string]any{"change": v.Change, "state": v.State, "digest": v.Digest, "findings": v.Findings})
	_, err := g.audit.Append(ctx, audit.Record{
		Kind: audit.KindAdmin, Method: "tools/pin", Upstream: up.name, Tool: exposedName(up, v.Name),
		Status: string(v.State), Extra: map[string]json.RawMessage{"pin": detail},
	})
	if err != nil {
		g.logger.Error("audit append failed for a tool pin", "tool", v.Name, "err", err)
	}
}

// warnSimilarNames reports exposed tool names that a model could confuse.
func (g *Gateway) warnSimilarNames(c *catalog) {
	names := make([]string, 0, len(c.tools))
	for n := range c.tools {
		names = append(names, n)
	}
	for _, pair := range pin.SimilarNames(names) {
		g.logger.Warn("confusingly similar tool names", "a", pair[0], "b", pair[1])
	}
}

func rawJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil
	}
	return b
}
