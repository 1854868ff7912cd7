package detect

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// Score is the quality of one class's detector on a labelled set.
type Score struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F2        float64 `json:"f2"`
	// Support is the number of labelled spans of the class.
	Support int `json:"support"`
	// Detected is the number of spans the scanner reported for the class.
	Detected int `json:"detected"`
}

// labelled is one record of the evaluation format (Presidio research's
// synthetic data set): spans are character offsets into FullText.
type labelled struct {
	FullText string `json:"full_text"`
	Spans    []struct {
		EntityType string `json:"entity_type"`
		Start      int    `json:"start_position"`
		End        int    `json:"end_position"`
	} `json:"spans"`
}

// Evaluate runs the default scanner over a labelled file (a JSON array of
// {full_text, spans: [{entity_type, start_position, end_position}]}, with
// character offsets) and scores each class.
//
// Matching rule: a reported span is a true positive when it overlaps (shares
// at least one character with) a labelled span of the same class, otherwise
// a false positive; a labelled span is recalled when some reported span of
// its class overlaps it. Precision = true positives / reported, recall =
// recalled / labelled, F2 weighs recall twice as much as precision. Classes
// only labelled (never reported) get precision 0 and Detected 0.
func Evaluate(r io.Reader) (map[string]Score, error) {
	return EvaluateWith(r, Default())
}

// EvaluateWith is Evaluate with a given scanner.
func EvaluateWith(r io.Reader, s *Scanner) (map[string]Score, error) {
	var recs []labelled
	dec := json.NewDecoder(r)
	if err := dec.Decode(&recs); err != nil {
		return nil, fmt.Errorf("detect: reading labelled data: %w", err)
	}
	type tally struct{ tp, detected, recalled, support int }
	tallies := map[string]*tally{}
	get := func(c string) *tally {
		if tallies[c] == nil {
			tallies[c] = &tally{}
		}
		return tallies[c]
	}
	var fs []Finding
	for n, rec := range recs {
		runes := utf8.RuneCountInString(rec.FullText)
		for _, sp := range rec.Spans {
			if sp.Start < 0 || sp.End > runes || sp.Start >= sp.End {
				return nil, fmt.Errorf("detect: record %d: span %s [%d,%d) outside the text", n, sp.EntityType, sp.Start, sp.End)
			}
		}
		text := []byte(rec.FullText)
		fs = s.Scan(text, nil, fs[:0])
		// Byte offsets to character offsets.
		for i := range fs {
			fs[i].Start = utf8.RuneCount(text[:fs[i].Start])
			fs[i].End = utf8.RuneCount(text[:fs[i].End])
		}
		for _, f := range fs {
			t := get(f.Class)
			t.detected++
			for _, sp := range rec.Spans {
				if sp.EntityType == f.Class && f.Start < sp.End && sp.Start < f.End {
					t.tp++
					break
				}
			}
		}
		for _, sp := range rec.Spans {
			t := get(sp.EntityType)
			t.support++
			for _, f := range fs {
				if sp.EntityType == f.Class && f.Start < sp.End && sp.Start < f.End {
					t.recalled++
					break
				}
			}
		}
	}
	out := make(map[string]Score, len(tallies))
	for c, t := range tallies {
		var sc Score
		sc.Support, sc.Detected = t.support, t.detected
		if t.detected > 0 {
			sc.Precision = float64(t.tp) / float64(t.detected)
		}
		if t.support > 0 {
			sc.Recall = float64(t.recalled) / float64(t.support)
		}
		if d := 4*sc.Precision + sc.Recall; d > 0 {
			sc.F2 = 5 * sc.Precision * sc.Recall / d
		}
		out[c] = sc
	}
	return out, nil
}

// WriteScores writes scores as JSON ({"CLASS": {precision, recall, f2,
// support, detected}}) or as a table, one class a line, sorted by name.
func WriteScores(w io.Writer, scores map[string]Score, asJSON bool) error {
	if asJSON {
		rounded := make(map[string]Score, len(scores))
		for c, s := range scores {
			s.Precision, s.Recall, s.F2 = round4(s.Precision), round4(s.Recall), round4(s.F2)
			rounded[c] = s
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rounded); err != nil {
			return fmt.Errorf("detect: writing scores: %w", err)
		}
		return nil
	}
	classes := make([]string, 0, len(scores))
	for c := range scores {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CLASS\tPRECISION\tRECALL\tF2\tSUPPORT\tDETECTED\t")
	for _, c := range classes {
		s := scores[c]
		if s.Detected == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%d\t%s\t\n", c, s.Support, "not detected")
			continue
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%d\t%d\t\n", c, s.Precision, s.Recall, s.F2, s.Support, s.Detected)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("detect: writing scores: %w", err)
	}
	_, err := io.WriteString(w, strings.TrimSpace(`
Matching: a reported span counts when it overlaps a labelled span of the same class.`)+"\n")
	return err
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// RunEval evaluates the labelled data in r and writes the scores to w, as
// JSON or as a table.
func RunEval(r io.Reader, w io.Writer, asJSON bool) error {
	scores, err := Evaluate(r)
	if err != nil {
		return err
	}
	return WriteScores(w, scores, asJSON)
}
