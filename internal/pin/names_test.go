package pin

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSimilarNames(t *testing.T) {
	cases := []struct {
		name  string
		names []string
		want  [][2]string
	}{
		{"case", []string{"shop.get_order", "Shop.Get_Order"}, [][2]string{{"Shop.Get_Order", "shop.get_order"}}},
		{"separators", []string{"shop.get_order", "shop.get-order", "shop.getorder"},
			[][2]string{{"shop.get-order", "shop.get_order"}, {"shop.get-order", "shop.getorder"}, {"shop.get_order", "shop.getorder"}}},
		{"dot against underscore", []string{"shop.get_order", "shop_get_order"}, [][2]string{{"shop.get_order", "shop_get_order"}}},
		{"cyrillic", []string{"create_issue", "сreate_issue"}, [][2]string{{"create_issue", "сreate_issue"}}},
		{"greek omicron", []string{"read_docs", "read_dοcs"}, [][2]string{{"read_docs", "read_dοcs"}}},
		{"digits", []string{"send_email", "send_emai1", "files.read", "fi1es.read"},
			[][2]string{{"fi1es.read", "files.read"}, {"send_emai1", "send_email"}}},
		{"one edit, unprefixed", []string{"send_email", "send_emails"}, [][2]string{{"send_email", "send_emails"}}},
		{"one edit across upstreams", []string{"mail.send_email", "evil.send_emai"}, nil},
		{"one edit, other namespace", []string{"refund_order", "x.refund_order"}, nil},
		{"one edit in one upstream", []string{"shop.get_order", "shop.get_orders", "fs.list_file", "fs.list_files"}, nil},
		{"short names", []string{"add", "adb", "sum", "sun"}, nil},
		{"namespaces only", []string{"pg1.query", "pg2.query", "github.create_issue", "gitlab.create_issue"}, nil},
		{"distinct", []string{"db.query", "db.query_plan", "shop.get_order", "shop.refund_order", "github.search", "jira.search"}, nil},
		{"duplicates ignored", []string{"shop.get_order", "shop.get_order"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, SimilarNames(tc.names)); diff != "" {
				t.Errorf("SimilarNames(%q) (-want +got):\n%s", tc.names, diff)
			}
		})
	}
}

func TestOneEditApart(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"sendemail", "sendemails", true},
		{"sendemail", "xsendemail", true},
		{"sendemail", "sendemali", false}, // transposition is two edits
		{"sendemail", "sendemaij", true},
		{"sendemail", "sendemail", false},
		{"abcde", "abcdf", false}, // too short
		{"getordér", "getorder", true},
	} {
		if got := oneEditApart(tc.a, tc.b); got != tc.want {
			t.Errorf("oneEditApart(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
