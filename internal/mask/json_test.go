package mask

import "testing"

func TestSafeRunMatchesByteRule(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 20; pos++ {
			b := []byte("abcdefghijklmnopqrstuvwxyz")
			b[pos] = byte(c)
			want := len(b)
			if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
				want = pos
			}
			if got := safeRun(b); got != want {
				t.Fatalf("byte %#x at %d: safeRun = %d, want %d", c, pos, got, want)
			}
		}
	}
}
