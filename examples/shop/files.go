package shop

import (
	"embed"
	"fmt"
)

// files are the example's Warden configuration and policy, embedded so
// that `warden demo` runs exactly what this directory documents.
//
//go:embed warden.yaml policy.yaml
var files embed.FS

// WardenConfig returns warden.yaml: Warden's configuration for standing in
// front of the shop at http://127.0.0.1:9000/mcp.
func WardenConfig() []byte { return mustRead("warden.yaml") }

// Policy returns policy.yaml: the policy for a support agent using the shop.
func Policy() []byte { return mustRead("policy.yaml") }

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		// Unreachable: the go:embed directive above guarantees the file.
		panic(fmt.Sprintf("shop: embedded %s: %v", name, err))
	}
	return b
}
