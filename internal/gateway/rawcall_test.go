package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const rawTestLimit = 1 << 16

func TestReadEventResponse(t *testing.T) {
	const id = `"wr-1"`
	const answer = `{"jsonrpc":"2.0","id":"wr-1","result":{"content":[]}}`
	tests := []struct {
		name    string
		stream  string
		want    string // the answer returned; "" when an error is wanted
		wantErr string // part of the error
	}{
		{
			name: "notifications before the answer",
			stream: "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"p\",\"progress\":1}}\n\n" +
				"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"hi\"}}\n\n" +
				"event: message\nid: 3\ndata: " + answer + "\n\n",
			want: answer,
		},
		{
			name:   "the answer alone",
			stream: "event: message\ndata: " + answer + "\n\n",
			want:   answer,
		},
		{
			name:   "data without a space, comments and other fields",
			stream: ": keep-alive\nretry: 100\nevent: message\ndata:" + answer + "\n\n",
			want:   answer,
		},
		{
			name:   "CRLF line endings",
			stream: "event: message\r\ndata: " + answer + "\r\n\r\n",
			want:   answer,
		},
		{
			name:   "the stream ends right after the answer's data",
			stream: "event: message\ndata: " + answer,
			want:   answer,
		},
		{
			name:   "multi-line data is joined with newlines",
			stream: "event: message\ndata: {\"jsonrpc\":\"2.0\",\ndata: \"id\":\"wr-1\",\ndata: \"result\":{\"content\":[]}}\n\n",
			want:   "{\"jsonrpc\":\"2.0\",\n\"id\":\"wr-1\",\n\"result\":{\"content\":[]}}",
		},
		{
			name:    "an answer to another id",
			stream:  "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"wr-2\",\"result\":{}}\n\n",
			wantErr: `answered request "wr-2", not "wr-1"`,
		},
		{
			name:    "an answer to the same id as a number",
			stream:  "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
			wantErr: "answered request 1",
		},
		{
			name: "a request to the client",
			stream: "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"elicitation/create\",\"params\":{}}\n\n" +
				"event: message\ndata: " + answer + "\n\n",
			wantErr: "sent a elicitation/create request",
		},
		{
			name:    "the stream ends without an answer",
			stream:  "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n",
			wantErr: "ended without an answer",
		},
		{
			name:    "an empty stream",
			stream:  "",
			wantErr: "ended without an answer",
		},
		{
			name:    "an event that is not JSON",
			stream:  "event: message\ndata: hello\n\n",
			wantErr: "not JSON-RPC",
		},
		{
			name:    "a line longer than the limit",
			stream:  "event: message\ndata: " + strings.Repeat("x", rawTestLimit+10) + "\n\n",
			wantErr: "event over 65536 bytes",
		},
		{
			name:    "a message over the limit in several data lines",
			stream:  "data: " + strings.Repeat("x", rawTestLimit/2) + "\ndata: " + strings.Repeat("y", rawTestLimit/2) + "\n\n",
			wantErr: "event over 65536 bytes",
		},
		{
			name: "events of other types are skipped",
			stream: "event: ping\ndata: not json at all\n\n" +
				"event: message\ndata: " + answer + "\n\n",
			want: answer,
		},
		{
			name: "notifications before the answer add up past the limit",
			stream: strings.Repeat("data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\""+strings.Repeat("n", 1000)+"\"}}\n\n", 100) +
				"data: " + answer + "\n\n",
			want: answer,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readEventResponse(strings.NewReader(tc.stream), id, rawTestLimit, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readEventResponse = %q, %v; want an error saying %q", got, err, tc.wantErr)
				}
				if got != nil {
					t.Errorf("readEventResponse returned %q with its error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("readEventResponse: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("readEventResponse = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReadEventResponseNotifies: the notifications before the answer are
// handed on, in order, with their params; the answer and anything after it
// are not.
func TestReadEventResponseNotifies(t *testing.T) {
	const answer = `{"jsonrpc":"2.0","id":"wr-1","result":{"content":[]}}`
	stream := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"first\"}}\n\n" +
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"p\",\"progress\":1}}\n\n" +
		"event: message\ndata: " + answer + "\n\n" +
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\"after\"}}\n\n"
	var got []string
	answerGot, err := readEventResponse(strings.NewReader(stream), `"wr-1"`, rawTestLimit, func(method string, params json.RawMessage) {
		got = append(got, method+" "+string(params))
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(answerGot) != answer {
		t.Errorf("answer %q, want %q", answerGot, answer)
	}
	want := []string{
		`notifications/message {"level":"info","data":"first"}`,
		`notifications/progress {"progressToken":"p","progress":1}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notified\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReadEventResponseOwnsItsAnswer: the answer returned is a copy, not a
// view of a buffer that later reads overwrite.
func TestReadEventResponseOwnsItsAnswer(t *testing.T) {
	const answer = `{"jsonrpc":"2.0","id":"wr-1","result":{"content":[]}}`
	stream := "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\"" + strings.Repeat("n", 200) + "\"}}\n\n" +
		"data: " + answer + "\n\n" +
		"data: " + strings.Repeat("z", 300) + "\n\n"
	got, err := readEventResponse(strings.NewReader(stream), `"wr-1"`, rawTestLimit, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != answer {
		t.Fatalf("answer %q, want %q", got, answer)
	}
	var v map[string]any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("the answer does not decode: %v", err)
	}
}

func TestDecodeToolAnswer(t *testing.T) {
	const id = `"wr-5"`
	t.Run("result", func(t *testing.T) {
		res, err := decodeToolAnswer([]byte(`{"jsonrpc":"2.0","id":"wr-5","result":{"content":[{"type":"text","text":"hi"}],"isError":true,"resultType":"complete"}}`), id, http.StatusOK)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "hi" || !res.IsError || res.NeedsInput() {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("input required keeps its type", func(t *testing.T) {
		res, err := decodeToolAnswer([]byte(`{"jsonrpc":"2.0","id":"wr-5","result":{"resultType":"input_required","requestState":"s","inputRequests":{"q":{"method":"elicitation/create","params":{"message":"?","requestedSchema":{"type":"object"}}}}}}`), id, http.StatusOK)
		if err != nil {
			t.Fatal(err)
		}
		if !res.NeedsInput() || len(res.InputRequests) != 1 || res.RequestState != "s" {
			t.Errorf("result %+v: want an input-required result with its request and state", res)
		}
	})
	t.Run("JSON-RPC error", func(t *testing.T) {
		for _, status := range []int{http.StatusOK, http.StatusBadRequest, http.StatusNotFound} {
			_, err := decodeToolAnswer([]byte(`{"jsonrpc":"2.0","id":"wr-5","error":{"code":-32602,"message":"no such order","data":{"order":7}}}`), id, status)
			var werr *jsonrpc.Error
			if !errors.As(err, &werr) {
				t.Fatalf("HTTP %d: error %v (%T), want a *jsonrpc.Error", status, err, err)
			}
			if werr.Code != jsonrpc.CodeInvalidParams || werr.Message != "no such order" || string(werr.Data) != `{"order":7}` {
				t.Errorf("HTTP %d: error %+v, want code -32602, the message and data as sent", status, werr)
			}
		}
	})
	for _, tc := range []struct {
		name, raw string
		status    int
		wantErr   string
	}{
		{"another id", `{"jsonrpc":"2.0","id":"wr-6","result":{"content":[]}}`, http.StatusOK, `answered request "wr-6", not "wr-5"`},
		{"no id", `{"jsonrpc":"2.0","result":{"content":[]}}`, http.StatusOK, "answered request"},
		{"no result", `{"jsonrpc":"2.0","id":"wr-5"}`, http.StatusOK, "without a result"},
		{"a result with an error status", `{"jsonrpc":"2.0","id":"wr-5","result":{"content":[]}}`, http.StatusInternalServerError, "HTTP 500 without a result"},
		{"not JSON", `<html>oops</html>`, http.StatusBadGateway, "(HTTP 502) is not a JSON-RPC response"},
		{"a result that is not a tool result", `{"jsonrpc":"2.0","id":"wr-5","result":{"content":"text"}}`, http.StatusOK, "decoding the upstream's result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := decodeToolAnswer([]byte(tc.raw), id, tc.status)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("decodeToolAnswer = %+v, %v; want an error saying %q", res, err, tc.wantErr)
			}
			var werr *jsonrpc.Error
			if errors.As(err, &werr) {
				t.Errorf("error %v is a JSON-RPC error; the upstream sent none", err)
			}
		})
	}
}

func TestPlainID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{`"abc"`, true},
		{`""`, true},
		{`"\u0041"`, true},
		{`0`, true},
		{`7`, true},
		{`-5`, true},
		{`123456789012345`, true},   // 15 digits
		{`-123456789012345`, true},  // 15 digits and a sign
		{`1234567890123456`, false}, // 16 digits: past what a float64 holds exactly everywhere
		{`9007199254740993`, false},
		{`1.5`, false},
		{`1.0`, false},
		{`1e3`, false},
		{`-`, false},
		{`--1`, false},
		{`+1`, false},
		{`null`, false},
		{`true`, false},
		{`{}`, false},
		{`{"id":1}`, false},
		{`[1]`, false},
		{``, false},
	} {
		if got := plainID(json.RawMessage(tc.id)); got != tc.want {
			t.Errorf("plainID(%s) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestAcceptsBoth(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		want   bool
	}{
		{[]string{"application/json, text/event-stream"}, true},
		{[]string{"text/event-stream, application/json"}, true},
		{[]string{"application/json", "text/event-stream"}, true}, // two header lines
		{[]string{"*/*"}, true},
		{[]string{"application/*, text/*"}, true},
		{[]string{"application/json;q=0.9, text/event-stream;q=0.8"}, true},
		{[]string{" Application/JSON ; charset=utf-8 ,TEXT/EVENT-STREAM"}, true},
		{[]string{"application/json"}, false},
		{[]string{"text/event-stream"}, false},
		{[]string{"application/json, text/html"}, false},
		{[]string{"application/jsonx, text/event-stream"}, false},
		{[]string{"application/json text/event-stream"}, false}, // not a list
		{[]string{""}, false},
		{nil, false},
	} {
		if got := acceptsBoth(tc.accept); got != tc.want {
			t.Errorf("acceptsBoth(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}
