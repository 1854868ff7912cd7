package mask

import (
	"slices"

	"github.com/wardenmcp/warden/internal/mask/detect"
)

// Report says what masking found. It never holds a found value.
type Report struct {
	// Counts is the number of findings per class, including those the plan
	// let pass.
	Counts map[string]int `json:"counts,omitempty"`
	// Paths lists where values were changed, as JSONPath ("$.rows[0].email";
	// "$" for free text). A string holding JSON is followed by "|" and the
	// path inside it: "$.content[0].text|$.email". A path never shows a
	// masked key's original text.
	Paths []string `json:"paths,omitempty"`
	// Labels are the data labels implied by what was found ("financial",
	// "pii", "secret", "sensitive"), sorted; passed findings count too,
	// since that data reaches the caller.
	Labels []string `json:"labels,omitempty"`
	// NotJSON is set when the input should have been JSON but did not
	// parse (or nested too deep); it was masked as text instead.
	NotJSON bool `json:"not_json,omitempty"`
	// TokenFailures counts values redacted because a token could not be
	// made or stored.
	TokenFailures int `json:"token_failures,omitempty"`
}

// Total is the number of findings of all classes.
func (r Report) Total() int {
	n := 0
	for _, c := range r.Counts {
		n += c
	}
	return n
}

func labelsFor(counts map[string]int) []string {
	var out []string
	for class := range counts {
		for _, l := range detect.Labels(class) {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	slices.Sort(out)
	return out
}
