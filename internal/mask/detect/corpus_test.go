package detect

import (
	"os"
	"testing"
)

const corpusPath = "../../../../shared/corpus/pii-presidio-synth-sample.json"

// TestCorpusQuality holds the detectors to their targets on the labelled
// sample: 0.95 precision and recall for cards, emails, IBANs, SSNs and IP
// addresses; 0.85 for phone numbers.
func TestCorpusQuality(t *testing.T) {
	f, err := os.Open(corpusPath)
	if err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	defer f.Close()
	scores, err := Evaluate(f)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]float64{
		CreditCard: 0.95, Email: 0.95, IBAN: 0.95, USSSN: 0.95, IPAddress: 0.95, Phone: 0.85,
	}
	for class, min := range targets {
		s := scores[class]
		if s.Support == 0 {
			t.Errorf("%s: no labelled spans in the corpus", class)
			continue
		}
		if s.Precision < min || s.Recall < min {
			t.Errorf("%s: precision %.3f recall %.3f (support %d, detected %d), want both >= %.2f", class, s.Precision, s.Recall, s.Support, s.Detected, min)
		}
	}
}
