package mask

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// genResult builds a realistic MCP tool result of about size bytes: a
// structuredContent with customer records, orders and log lines, and the
// same data as JSON text in content[0], with PII sprinkled as in real
// support-desk data. It is deterministic.
func genResult(size int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(size)))
	first := []string{"Ann", "Bo", "Chen", "Dara", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Jules"}
	last := []string{"Lee", "Meyer", "Okafor", "Silva", "Novak", "Tanaka", "Haddad", "Kowalski"}
	cities := []string{"Lyon", "Porto", "Osaka", "Austin", "Leeds", "Graz"}
	status := []string{"shipped", "pending", "refunded", "cancelled", "delivered"}
	levels := []string{"INFO", "WARN", "ERROR", "DEBUG"}
	msgs := []string{
		"payment authorized for order %d",
		"user %s logged in from %s",
		"cache miss for key product:%d",
		"retrying upstream request after 250ms",
		"sent receipt to %s",
		"request completed in %dms with status 200",
	}
	var customers, orders []map[string]any
	var logs []string
	n := 0
	for n < size/2 {
		fn, ln := first[r.IntN(len(first))], last[r.IntN(len(last))]
		email := strings.ToLower(fn+"."+ln) + fmt.Sprintf("%d@example.com", r.IntN(100))
		c := map[string]any{
			"id":         r.IntN(1e6),
			"name":       fn + " " + ln,
			"email":      email,
			"city":       cities[r.IntN(len(cities))],
			"created_at": fmt.Sprintf("2025-%02d-%02dT10:%02d:00Z", 1+r.IntN(12), 1+r.IntN(28), r.IntN(60)),
			"tier":       "gold",
			"balance":    float64(r.IntN(100000)) / 100,
		}
		if r.IntN(3) == 0 {
			c["phone"] = fmt.Sprintf("+1 415-555-%04d", r.IntN(10000))
		}
		customers = append(customers, c)
		o := map[string]any{
			"order_id":  fmt.Sprintf("ORD-%08d", r.IntN(1e8)),
			"customer":  c["id"],
			"amount":    float64(r.IntN(50000)) / 100,
			"currency":  "EUR",
			"status":    status[r.IntN(len(status))],
			"items":     []map[string]any{{"sku": fmt.Sprintf("SKU-%05d", r.IntN(1e5)), "qty": 1 + r.IntN(4)}},
			"placed_at": fmt.Sprintf("2025-%02d-%02d %02d:%02d:%02d", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60)),
		}
		if r.IntN(10) == 0 {
			o["card"] = "4111 1111 1111 1111"
		}
		orders = append(orders, o)
		m := msgs[r.IntN(len(msgs))]
		var line string
		switch strings.Count(m, "%") {
		case 1:
			if strings.Contains(m, "%s") {
				line = fmt.Sprintf(m, email)
			} else {
				line = fmt.Sprintf(m, r.IntN(1e5))
			}
		case 2:
			line = fmt.Sprintf(m, email, fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)))
		default:
			line = m
		}
		logs = append(logs, fmt.Sprintf("2025-11-%02dT%02d:%02d:%02d.%03dZ %s %s", 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000), levels[r.IntN(len(levels))], line))
		n += 520
	}
	data := map[string]any{"customers": customers, "orders": orders, "log": logs}
	text, _ := json.Marshal(data)
	res := map[string]any{
		"content":           []map[string]any{{"type": "text", "text": string(text)}},
		"structuredContent": data,
	}
	out, _ := json.Marshal(res)
	return out
}
