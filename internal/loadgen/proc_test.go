package loadgen

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

func newJSONLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	stat := "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 100 1000 200"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want { // (250+50) ticks of 10 ms
		t.Errorf("cpu = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "1234 no-paren S 1", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 zz 5"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) succeeded", bad)
		}
	}
}

func TestStatusKiB(t *testing.T) {
	status := "Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n"
	if got, err := statusKiB(status, "VmHWM:"); err != nil || got != 20<<20 {
		t.Errorf("VmHWM = %d, %v; want %d", got, err, 20<<20)
	}
	if _, err := statusKiB(status, "VmSwap:"); err == nil {
		t.Error("missing line accepted")
	}
	if _, err := statusKiB("VmRSS: 12 MB\n", "VmRSS:"); err == nil {
		t.Error("unknown unit accepted")
	}
}

func TestReadProcStatsOfThisProcess(t *testing.T) {
	s, err := ReadProcStats(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.PeakRSS < s.RSS || s.CPU < 0 {
		t.Errorf("stats %+v: want 0 < RSS <= PeakRSS and CPU >= 0", s)
	}
	if _, err := ReadProcStats(-1); err == nil {
		t.Error("stats of pid -1 succeeded")
	}
}
