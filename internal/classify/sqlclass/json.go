package sqlclass

import (
	"encoding/json"
	"fmt"
	"io"
)

// ClassifyJSON reads SQL text from r and writes its Result to w as one
// indented JSON object. Text longer than MaxInputBytes is classified as
// unparseable; the error is only for reading and writing.
func ClassifyJSON(r io.Reader, w io.Writer) error {
	text, err := io.ReadAll(io.LimitReader(r, MaxInputBytes+1))
	if err != nil {
		return fmt.Errorf("read SQL: %w", err)
	}
	out, err := json.MarshalIndent(Classify(string(text)), "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if _, err := w.Write(append(out, '\n')); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}
