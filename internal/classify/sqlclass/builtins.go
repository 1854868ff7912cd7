package sqlclass

import (
	_ "embed"
	"fmt"
	"path"
	"strings"
	"sync"
)

//go:generate go run ./gen -o builtins.txt

// builtinsText is the allow-list of read-only built-in functions and
// operators, generated from a real PostgreSQL catalog by gen/main.go.
//
//go:embed builtins.txt
var builtinsText string

// catalog is the parsed allow-list. It is built once and never modified.
type catalog struct {
	functions map[string]string // pg_catalog name → class: "read" or a side effect
	operators map[string]bool
	types     map[string]bool // pg_catalog type names
	patterns  []namePattern
}

// namePattern flags every function whose name matches glob, in any schema.
type namePattern struct {
	glob  string
	class string
}

// loadCatalog parses the embedded allow-list once; every classification
// shares the immutable result.
var loadCatalog = sync.OnceValues(func() (*catalog, error) {
	return parseCatalog(builtinsText)
})

func parseCatalog(text string) (*catalog, error) {
	c := &catalog{functions: map[string]string{}, operators: map[string]bool{}, types: map[string]bool{}}
	for n, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "func":
			if !knownClass(f[2]) {
				return nil, fmt.Errorf("builtins line %d: unknown class %q", n+1, f[2])
			}
			c.functions[f[1]] = f[2]
		case len(f) == 2 && f[0] == "op":
			c.operators[f[1]] = true
		case len(f) == 2 && f[0] == "type":
			c.types[f[1]] = true
		case len(f) == 3 && f[0] == "pattern":
			if f[2] == "read" || !knownClass(f[2]) {
				return nil, fmt.Errorf("builtins line %d: unknown class %q", n+1, f[2])
			}
			if _, err := path.Match(f[1], ""); err != nil {
				return nil, fmt.Errorf("builtins line %d: bad pattern %q: %w", n+1, f[1], err)
			}
			c.patterns = append(c.patterns, namePattern{glob: f[1], class: f[2]})
		default:
			return nil, fmt.Errorf("builtins line %d: cannot read %q", n+1, line)
		}
	}
	if len(c.functions) == 0 || len(c.operators) == 0 || len(c.types) == 0 {
		return nil, fmt.Errorf("builtins: allow-list is empty")
	}
	return c, nil
}

// knownClass says whether the data file's class is one the classifier knows.
func knownClass(class string) bool {
	return class == "read" || classEffect(class) != noEffect
}

// readOnlyClass says whether a built-in of this class is read-only.
func readOnlyClass(class string) bool {
	return class == "read"
}

// classEffect maps a pattern class of the data file to the effect it sets.
func classEffect(class string) effect {
	switch class {
	case "writes":
		return writesData
	case "settings":
		return changesSettings
	case "locks":
		return locks
	case "files":
		return touchesFiles
	case "connections":
		return otherConnections
	case "code":
		return executesCode
	case "sleep":
		return delays
	}
	return noEffect
}

// sideEffect returns the reviewed side-effect class of a function name
// (without schema), or "" when no pattern matches.
func (c *catalog) sideEffect(name string) string {
	for _, p := range c.patterns {
		if ok, _ := path.Match(p.glob, name); ok {
			return p.class
		}
	}
	return ""
}
