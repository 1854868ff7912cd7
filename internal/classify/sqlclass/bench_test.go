package sqlclass

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// analyticQuery is a typical reporting query of about 2 KB.
var analyticQuery = strings.TrimSpace(`
WITH monthly AS (
    SELECT date_trunc('month', t.created_at) AS month,
           a.region,
           a.segment,
           count(*) AS transfers,
           sum(t.amount) AS volume,
           avg(t.amount) FILTER (WHERE t.amount > 0) AS avg_positive,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY t.amount) AS median_amount
    FROM public.transfers t
    JOIN public.accounts a ON a.id = t.account_id
    LEFT JOIN public.account_flags f ON f.account_id = a.id AND f.flag = 'test'
    WHERE t.created_at >= now() - interval '13 months'
      AND t.status IN ('settled', 'pending')
      AND f.account_id IS NULL
      AND coalesce(a.closed_at, 'infinity'::timestamptz) > t.created_at
    GROUP BY 1, 2, 3
),
ranked AS (
    SELECT m.*,
           rank() OVER (PARTITION BY m.month ORDER BY m.volume DESC) AS volume_rank,
           lag(m.volume) OVER (PARTITION BY m.region, m.segment ORDER BY m.month) AS prev_volume,
           sum(m.volume) OVER (PARTITION BY m.month) AS month_total
    FROM monthly m
),
regions AS (
    SELECT r.code, r.name, r.currency
    FROM public.regions r
    WHERE r.active AND r.code <> ALL (ARRAY['XX', 'ZZ'])
)
SELECT to_char(rk.month, 'YYYY-MM') AS month,
       rg.name AS region_name,
       rk.segment,
       rk.transfers,
       round(rk.volume::numeric, 2) AS volume,
       round((100.0 * rk.volume / nullif(rk.month_total, 0))::numeric, 1) AS share_pct,
       CASE WHEN rk.prev_volume IS NULL THEN NULL
            ELSE round((100.0 * (rk.volume - rk.prev_volume) / nullif(rk.prev_volume, 0))::numeric, 1)
       END AS growth_pct,
       rk.median_amount,
       rk.volume_rank,
       EXISTS (SELECT 1 FROM public.incidents i
               WHERE i.region = rk.region AND date_trunc('month', i.opened_at) = rk.month) AS had_incident,
       (SELECT string_agg(DISTINCT c.name, ', ' ORDER BY c.name)
          FROM public.campaigns c
         WHERE c.region = rk.region AND tstzrange(c.starts_at, c.ends_at) && tstzrange(rk.month, rk.month + interval '1 month')) AS campaigns,
       jsonb_build_object('region', rk.region, 'segment', rk.segment, 'currency', rg.currency) AS meta
FROM ranked rk
JOIN regions rg ON rg.code = rk.region
WHERE rk.volume_rank <= 20
  AND rk.segment NOT LIKE 'internal%'
ORDER BY rk.month DESC, rk.volume_rank, rg.name
LIMIT 500`)

var benchQueries = []struct{ name, sql string }{
	{"simple", "SELECT id, name, balance FROM accounts WHERE id = $1"},
	{"join-cte", "WITH recent AS (SELECT account_id, sum(amount) AS total FROM transfers WHERE created_at > now() - interval '7 days' GROUP BY account_id) " +
		"SELECT a.id, a.name, r.total FROM accounts a JOIN recent r ON r.account_id = a.id WHERE r.total > 1000 ORDER BY r.total DESC LIMIT 50"},
	{"analytic-2kb", analyticQuery},
}

// BenchmarkClassify measures whole classifications (parse and walk) and
// reports the median and 99th percentile of single calls.
func BenchmarkClassify(b *testing.B) {
	for _, q := range benchQueries {
		if !Classify(q.sql).ReadOnly {
			b.Fatalf("%s: benchmark query must be read-only: %q", q.name, Classify(q.sql).Reasons)
		}
		b.Run(q.name, func(b *testing.B) {
			b.SetBytes(int64(len(q.sql)))
			b.ReportAllocs()
			durations := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				Classify(q.sql)
				durations = append(durations, time.Since(start))
			}
			slices.Sort(durations)
			b.ReportMetric(float64(percentile(durations, 50).Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(percentile(durations, 99).Nanoseconds()), "p99-ns")
		})
	}
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}
