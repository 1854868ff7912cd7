package detect

import "testing"

// FuzzScan: never panics; findings lie inside the text, are sorted, do not
// overlap and clear the threshold.
func FuzzScan(f *testing.F) {
	for _, p := range positives {
		f.Add(p.text, "")
	}
	for _, n := range negatives {
		f.Add(n.text, "note")
	}
	f.Add("536228741", "ssn")
	f.Add("hunter22", "password")
	s := Default()
	f.Fuzz(func(t *testing.T, text, key string) {
		fs := s.Scan([]byte(text), []byte(key), nil)
		end := 0
		for _, fd := range fs {
			if fd.Start < end || fd.Start >= fd.End || fd.End > len(text) || fd.Score < s.Threshold() || fd.Score > 1 {
				t.Fatalf("bad finding %+v after %d in %q: %v", fd, end, text, fs)
			}
			end = fd.End
		}
	})
}
