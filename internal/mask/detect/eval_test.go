package detect

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestEvaluateMatchingRule(t *testing.T) {
	// Character offsets: "é" is one character but two bytes.
	data := `[
	 {"full_text": "é mail a@example.com", "spans": [{"entity_type": "EMAIL_ADDRESS", "start_position": 7, "end_position": 20}]},
	 {"full_text": "mail b@example.com and c@example.com", "spans": [{"entity_type": "EMAIL_ADDRESS", "start_position": 5, "end_position": 10}]},
	 {"full_text": "call me", "spans": [{"entity_type": "PHONE_NUMBER", "start_position": 0, "end_position": 4}]}
	]`
	scores, err := Evaluate(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	e := scores[Email]
	// 3 detected, 2 overlap a label (the partial label counts), 2 of 2 labels recalled.
	if e.Detected != 3 || e.Support != 2 || e.Recall != 1 || e.Precision < 0.66 || e.Precision > 0.67 {
		t.Errorf("email score %+v", e)
	}
	if p := scores[Phone]; p.Support != 1 || p.Detected != 0 || p.Recall != 0 {
		t.Errorf("phone score %+v", p)
	}
}

func TestEvaluateRejectsBadInput(t *testing.T) {
	for _, in := range []string{
		`{"full_text": "x"}`,
		`[{"full_text": "abc", "spans": [{"entity_type": "X", "start_position": 2, "end_position": 9}]}]`,
	} {
		if _, err := Evaluate(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
}

func TestRunEvalOutputs(t *testing.T) {
	data := `[{"full_text": "mail a@example.com", "spans": [{"entity_type": "EMAIL_ADDRESS", "start_position": 5, "end_position": 18}, {"entity_type": "PERSON", "start_position": 0, "end_position": 4}]}]`
	var js bytes.Buffer
	if err := RunEval(strings.NewReader(data), &js, true); err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]float64
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, js.String())
	}
	if e := got[Email]; e["precision"] != 1 || e["recall"] != 1 || e["f2"] != 1 || e["support"] != 1 {
		t.Errorf("json %s", js.String())
	}
	var table bytes.Buffer
	if err := RunEval(strings.NewReader(data), &table, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "EMAIL_ADDRESS") || !strings.Contains(table.String(), "not detected") {
		t.Errorf("table:\n%s", table.String())
	}
}
