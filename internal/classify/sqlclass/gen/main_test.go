package main

import "testing"

func TestAllowClass(t *testing.T) {
	tests := []struct {
		name, volatility string
		procedure        bool
		class            string
		listed           bool
	}{
		{"lower", "i", false, "read", true},
		{"now", "s", false, "read", true},
		{"to_tsquery", "is", false, "read", true},
		{"clock_timestamp", "v", false, "read", true},
		{"nextval", "v", false, "writes", true},
		{"table_to_xml", "s", false, "code", true},
		{"txid_current", "s", false, "writes", true},
		{"pg_sleep", "v", false, "sleep", true},
		{"pg_ls_dir", "v", false, "files", true},
		{"ts_rewrite", "iv", false, "code", true},
		{"some_volatile_internal", "v", false, "", false},
		{"a_procedure", "v", true, "", false},
	}
	for _, tt := range tests {
		class, listed := allowClass(tt.name, tt.volatility, tt.procedure)
		if class != tt.class || listed != tt.listed {
			t.Errorf("allowClass(%q, %q, %v) = %q, %v; want %q, %v",
				tt.name, tt.volatility, tt.procedure, class, listed, tt.class, tt.listed)
		}
	}
}
