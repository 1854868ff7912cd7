package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/argschema"
)

// listing is what one upstream offers, as it last listed it.
type listing struct {
	tools     []*mcp.Tool
	prompts   []*mcp.Prompt
	resources []*mcp.Resource
	templates []*mcp.ResourceTemplate
}

// toolRoute maps an exposed tool name to the upstream that owns it.
type toolRoute struct {
	up       *upstream
	upstream string    // the tool's name at the upstream
	exposed  *mcp.Tool // the definition clients see
	// schema is the upstream's inputSchema, compiled; schemaErr says why
	// it could not be, and then the tool cannot be called.
	schema    *argschema.Schema
	schemaErr error
	// annotations are exposed.Annotations as the policy sees them, made
	// once per listing rather than per call.
	annotations map[string]any
	// headerParams: the schema binds arguments to x-mcp-header request
	// headers, which only the protocol library checks (fastcall.go).
	headerParams bool
}

type promptRoute struct {
	up       *upstream
	upstream string
	exposed  *mcp.Prompt
}

type resourceRoute struct {
	up       *upstream
	resource *mcp.Resource
}

type templateRoute struct {
	up       *upstream
	template *mcp.ResourceTemplate
}

// catalog is the aggregated, namespaced view of every upstream. It is built
// whole and swapped atomically; it is never modified after build.
type catalog struct {
	tools     map[string]*toolRoute
	prompts   map[string]*promptRoute
	resources map[string]*resourceRoute // by URI
	templates map[string]*templateRoute // by URI template
}

// exposedName is the name clients see for an upstream's tool or prompt.
func exposedName(up *upstream, name string) string {
	if up.cfg.Unprefixed {
		return name
	}
	return up.name + "." + name
}

// buildCatalog aggregates listings in upstream order. Two upstreams
// offering the same exposed name (or resource URI) is an error, never a
// silent merge; the returned catalog keeps the first owner.
func buildCatalog(ups []*upstream, lists map[string]*listing) (*catalog, []error) {
	c := &catalog{
		tools:     map[string]*toolRoute{},
		prompts:   map[string]*promptRoute{},
		resources: map[string]*resourceRoute{},
		templates: map[string]*templateRoute{},
	}
	var errs []error
	collide := func(kind, name string, first, second *upstream) {
		errs = append(errs, fmt.Errorf("%s %q is offered by both upstream %s and upstream %s", kind, name, first.name, second.name))
	}
	for _, up := range ups {
		l := lists[up.name]
		if l == nil {
			continue
		}
		for _, t := range l.tools {
			name := exposedName(up, t.Name)
			if prev, ok := c.tools[name]; ok {
				collide("tool", name, prev.up, up)
				continue
			}
			rt := &toolRoute{up: up, upstream: t.Name, exposed: exposeTool(t, name)}
			if a := rt.exposed.Annotations; a != nil {
				rt.annotations = annotationMap(a)
			}
			rt.schema, rt.schemaErr = compileInputSchema(t.InputSchema)
			if raw, err := json.Marshal(rt.exposed.InputSchema); err != nil || bytes.Contains(raw, []byte(`"x-mcp-header"`)) {
				rt.headerParams = true
			}
			c.tools[name] = rt
		}
		for _, p := range l.prompts {
			name := exposedName(up, p.Name)
			if prev, ok := c.prompts[name]; ok {
				collide("prompt", name, prev.up, up)
				continue
			}
			cp := *p
			cp.Name = name
			c.prompts[name] = &promptRoute{up: up, upstream: p.Name, exposed: &cp}
		}
		for _, r := range l.resources {
			if prev, ok := c.resources[r.URI]; ok {
				collide("resource", r.URI, prev.up, up)
				continue
			}
			c.resources[r.URI] = &resourceRoute{up: up, resource: r}
		}
		for _, t := range l.templates {
			if prev, ok := c.templates[t.URITemplate]; ok {
				collide("resource template", t.URITemplate, prev.up, up)
				continue
			}
			c.templates[t.URITemplate] = &templateRoute{up: up, template: t}
		}
	}
	return c, errs
}

// compileInputSchema compiles a tool's inputSchema as the upstream gave it.
// A missing schema accepts any object.
func compileInputSchema(s any) (*argschema.Schema, error) {
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if string(raw) == "null" {
		raw = []byte(`{"type":"object"}`)
	}
	return argschema.CompileUpstream(raw)
}

// exposeTool copies an upstream tool under its exposed name, with an input
// schema the protocol layer accepts: an object schema. A schema that is not
// one is replaced by an empty object schema so that a hostile definition
// cannot break listing; arguments are still checked against the original
// by policy before any call.
func exposeTool(t *mcp.Tool, name string) *mcp.Tool {
	cp := *t
	cp.Name = name
	cp.InputSchema = objectSchema(t.InputSchema)
	if t.OutputSchema != nil {
		cp.OutputSchema = objectSchemaOrNil(t.OutputSchema)
	}
	return &cp
}

func objectSchema(s any) any {
	if o := objectSchemaOrNil(s); o != nil {
		return o
	}
	return json.RawMessage(`{"type":"object"}`)
}

func objectSchemaOrNil(s any) any {
	raw, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil || m["type"] != "object" {
		return nil
	}
	return json.RawMessage(raw)
}
