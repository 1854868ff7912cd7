package pin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Severity ranks a finding. Only high findings can quarantine a tool
// (Options.QuarantineFindings); medium and low ones are shown to operators.
type Severity string

const (
	SeverityHigh   Severity = "high"
	SeverityMedium Severity = "medium"
	SeverityLow    Severity = "low"
)

// FindingKind names what a scan found.
type FindingKind string

const (
	// KindHiddenInstruction: text addressed to the model rather than a
	// description of the tool ("ignore previous instructions").
	KindHiddenInstruction FindingKind = "hidden-instruction"
	// KindConcealment: asks the model to keep something from the user.
	KindConcealment FindingKind = "concealment"
	// KindMarkupTag: pseudo-markup that poses as instructions (<IMPORTANT>).
	KindMarkupTag FindingKind = "markup-tag"
	// KindSensitivePath: names credentials or client configuration files.
	KindSensitivePath FindingKind = "sensitive-path"
	// KindExfiltration: asks for data to be sent somewhere or smuggled
	// into an argument.
	KindExfiltration FindingKind = "exfiltration"
	// KindCrossTool: instructions about how another tool should behave.
	KindCrossTool FindingKind = "cross-tool-instruction"
	// KindInvisibleUnicode: zero-width, bidirectional-control or tag
	// characters, which hide text from the person reviewing it.
	KindInvisibleUnicode FindingKind = "invisible-unicode"
	// KindControlCharacter: other control or format characters.
	KindControlCharacter FindingKind = "control-character"
	// KindLongDescription: a description long enough to bury instructions.
	KindLongDescription FindingKind = "long-description"
	// KindEncodedBlob: base64 or hex runs, which hide text from review.
	KindEncodedBlob FindingKind = "encoded-blob"
	// KindMalformedJSON: a schema that is not valid JSON or repeats a key,
	// so that what a client reads is ambiguous.
	KindMalformedJSON FindingKind = "malformed-json"
)

// Finding is one thing a scan found in a definition.
type Finding struct {
	Kind     FindingKind `json:"kind"`
	Severity Severity    `json:"severity"`
	// Field is where: "title", "description", or a schema location such as
	// "inputSchema.properties.note.description".
	Field string `json:"field"`
	// Detail says what matched, with invisible characters spelled out.
	Detail string `json:"detail"`
}

// MaxDescriptionRunes is the description length above which a scan reports
// KindLongDescription. Real tool descriptions run to a few hundred
// characters; the long ones that carry instructions run to thousands.
const MaxDescriptionRunes = 4000

// maxFindings bounds one definition's findings so that a hostile one cannot
// flood a report.
const maxFindings = 64

// HasHigh reports whether any finding is of high severity.
func HasHigh(findings []Finding) bool {
	return slices.ContainsFunc(findings, func(f Finding) bool { return f.Severity == SeverityHigh })
}

// phrase is one pattern matched against normalised text (see normalise).
type phrase struct {
	kind     FindingKind
	severity Severity
	re       *regexp.Regexp
	why      string
}

// Identifiers of other tools in normalised text: snake or kebab case with at
// least one separator, optionally quoted.
const toolIdent = "[`'\"]?([a-z][a-z0-9]*(?:[_-][a-z0-9]+)+)[`'\"]?"

var phrases = []phrase{
	{KindHiddenInstruction, SeverityHigh, regexp.MustCompile(
		`\b(ignore|disregard|forget|override|bypass)\b[^.]{0,40}\b(previous|prior|above|earlier|preceding|all|any|other|original|system|safety)\b[^.]{0,20}\b(instructions?|prompts?|rules|directions|guidelines|guardrails|policies)\b`),
		"overrides the model's instructions"},
	{KindHiddenInstruction, SeverityHigh, regexp.MustCompile(
		`\b(before|prior to) (using|calling|invoking|running) this tool,? (you must |you should |you need to |please |first |always )*(read|open|cat|access|load|fetch|retrieve|obtain|collect|copy)\b`),
		"asks the model to fetch something before the call"},
	{KindHiddenInstruction, SeverityHigh, regexp.MustCompile(
		`\b(otherwise|or else) (the|this) tool (will not|won't|will fail to|cannot|can't) work\b`),
		"coerces the model with a false precondition"},
	{KindHiddenInstruction, SeverityHigh, regexp.MustCompile(
		`\b(you are now|new instructions|act as (an? )?(admin|root|developer)|developer mode|jailbreak)\b`),
		"addresses the model with new instructions"},
	{KindConcealment, SeverityHigh, regexp.MustCompile(
		`\b(do not|don't|dont|never|must not|should not)\b (ever )?(tell|inform|mention|notify|alert|reveal|disclose|explain|say)\b[^.]{0,40}\b(user|human|operator|anyone)\b`),
		"asks to keep something from the user"},
	{KindConcealment, SeverityHigh, regexp.MustCompile(
		`\bwithout (telling|informing|notifying|alerting|asking|mentioning (it|this) to) the (user|human)\b`),
		"asks to act without the user knowing"},
	{KindConcealment, SeverityHigh, regexp.MustCompile(
		`\b(hide|conceal|keep) (this|it|that|these)( (secret|hidden))? from the (user|human)\b|\bthe (user|human) (must|should|need) not (know|see|be told|find out|notice)\b|\b(secretly|covertly)\b`),
		"asks to hide something from the user"},
	{KindMarkupTag, SeverityHigh, regexp.MustCompile(
		`<\s*/?\s*(important|system|instructions?|secret|hidden|critical|admin)\s*>|\[/?(inst|system)\]|<\|(im_start|im_end|system)\|>`),
		"pseudo-markup posing as instructions"},
	{KindSensitivePath, SeverityHigh, regexp.MustCompile(
		`~/\.ssh|\.ssh/|\bid[_ ](rsa|dsa|ecdsa|ed25519)\b|\.aws/credentials|\bcredentials\.json\b|/etc/(passwd|shadow|sudoers)\b|\bmcp\.json\b|claude_desktop_config|~/\.cursor|\.cursor/|\.npmrc\b|\.netrc\b|\.git-credentials\b|\.kube/config\b|\.docker/config\.json|\.gnupg\b|\bwallet\.dat\b|\bseed phrase\b`),
		"names a credential or client configuration file"},
	{KindSensitivePath, SeverityMedium, regexp.MustCompile(
		"(^|[\\s'\"`/(])\\.env\\b"),
		"names an environment file"},
	{KindExfiltration, SeverityHigh, regexp.MustCompile(
		`\b(send|forward|post|upload|transmit|exfiltrate|leak|email|copy)\b (all |the |its |their |any |every |full |entire |whole )*(contents?|conversation|chat history|message history|credentials?|secrets?|passwords?|api keys?|access tokens?|tokens|private keys?|environment variables|ssh keys?)\b[^.]{0,80}?\bto\b`),
		"asks to send data somewhere"},
	{KindExfiltration, SeverityHigh, regexp.MustCompile(
		`\bpass (its|the|their|this|that|all|the file's)( full| entire| whole)? (contents?|data|text|value|output)\b[^.]{0,40}\b(as|in|into)\b`),
		"asks to smuggle data into an argument"},
	{KindExfiltration, SeverityHigh, regexp.MustCompile(
		`\b(include|add|put|append|embed|insert)\b (the |its |their |all |full |entire )*(contents?|conversation|chat history|message history|credentials?|secrets?|passwords?|api keys?|access tokens?|private keys?|ssh keys?)\b[^.]{0,60}\b(in|into|as) (the |a )?[` + "`" + `'"]?[a-z0-9_-]+[` + "`" + `'"]? (parameter|argument|field)\b`),
		"asks to smuggle data into an argument"},
	{KindExfiltration, SeverityHigh, regexp.MustCompile(
		`\b(bcc|cc|blind copy|forward( a copy)?)\b[^.]{0,40}[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}`),
		"adds a hidden recipient"},
	{KindCrossTool, SeverityMedium, regexp.MustCompile(
		`\b(when|whenever|each time|every time|any time)\b[^.]{0,20}` + toolIdent + `( tool| function)? (is|gets|has been) (called|invoked|used|run|executed)\b`),
		"describes another tool's behaviour"},
}

// crossToolRef finds another tool named as a tool: "the send_email tool",
// "calling send_email", "send_email is called".
var crossToolRef = regexp.MustCompile(
	`(?:\b(?:the|this|that|a) (?:tool|function) ` + toolIdent + `|` + toolIdent + ` (?:tool|function)\b|\b(?:call|calls|calling|invoke|invokes|invoking|run|running) (?:the )?` + toolIdent + `|` + toolIdent + ` (?:is|gets|has been) (?:called|invoked|used|run|executed))`)

// crossToolDirective marks a sentence that changes what another tool does.
var crossToolDirective = regexp.MustCompile(
	`\b(bcc|cc|redirect|reroute|override|replace|substitute|change (the|its|all)|also (send|forward|copy|include|email|add|bcc|cc)|forward|exfiltrate|secretly)\b`)

// Scan looks for tool poisoning in a definition: in its title and
// description, and in every key and string of its schemas and annotations
// (where parameter descriptions and names can carry the same attacks).
// Findings come in field order, each pattern at most once per field.
func Scan(d Definition) []Finding {
	var s scanner
	s.self = strings.ToLower(d.Name)
	s.text("title", d.Title, true)
	s.text("description", d.Description, true)
	if n := utf8.RuneCountInString(d.Description); n > MaxDescriptionRunes {
		s.add(Finding{KindLongDescription, SeverityMedium, "description",
			fmt.Sprintf("%d characters, over %d", n, MaxDescriptionRunes)})
	}
	s.json("inputSchema", d.InputSchema)
	s.json("outputSchema", d.OutputSchema)
	s.json("annotations", d.Annotations)
	return s.findings
}

type scanner struct {
	self     string
	findings []Finding
}

func (s *scanner) add(f Finding) {
	if len(s.findings) >= maxFindings {
		return
	}
	for _, g := range s.findings {
		if g.Kind == f.Kind && g.Field == f.Field && g.Severity == f.Severity {
			return
		}
	}
	s.findings = append(s.findings, f)
}

// text scans one string. prose is false for schema keys, whose separators
// are read as spaces and which are not checked for blobs.
func (s *scanner) text(field, raw string, prose bool) {
	if raw == "" {
		return
	}
	s.characters(field, raw)
	norm := normalise(raw, !prose)
	s.phrases(field, norm)
	if prose {
		s.blobs(field, raw)
	}
}

func (s *scanner) phrases(field, norm string) {
	for _, p := range phrases {
		if m := p.re.FindString(norm); m != "" {
			s.add(Finding{p.kind, p.severity, field, fmt.Sprintf("%s: %q", p.why, clip(m))})
		}
	}
	for _, sentence := range splitSentences(norm) {
		if !crossToolDirective.MatchString(sentence) {
			continue
		}
		for _, m := range crossToolRef.FindAllStringSubmatch(sentence, -1) {
			other := firstNonEmpty(m[1:])
			if other == "" || other == s.self {
				continue
			}
			s.add(Finding{KindCrossTool, SeverityHigh, field,
				fmt.Sprintf("instructs how tool %q should behave: %q", other, clip(sentence))})
			break
		}
	}
}

// characters reports invisible and control characters, which make the text
// a reviewer reads differ from the text the model reads.
func (s *scanner) characters(field, raw string) {
	var invisible, control []string
	var tagText strings.Builder
	var prev rune
	for i, r := range raw {
		if r >= 0xE0020 && r <= 0xE007E {
			// Tag characters mirror ASCII: decode what they smuggle.
			tagText.WriteRune(r - 0xE0000)
		}
		joinsEmoji := r == 0x200D && isEmojiPart(prev) && isEmojiPart(nextRune(raw, i+utf8.RuneLen(r)))
		prev = r
		switch {
		case joinsEmoji:
			// A zero-width joiner inside an emoji sequence (👩‍💻) is text.
		case isInvisible(r):
			invisible = append(invisible, fmt.Sprintf("U+%04X at byte %d", r, i))
		case r == '\n' || r == '\t' || r == '\r':
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			control = append(control, fmt.Sprintf("U+%04X at byte %d", r, i))
		}
	}
	if len(invisible) > 0 {
		detail := fmt.Sprintf("%d invisible or bidirectional characters: %s", len(invisible), listSome(invisible))
		if tagText.Len() > 0 {
			detail += fmt.Sprintf("; tag characters spell %q", clip(tagText.String()))
		}
		s.add(Finding{KindInvisibleUnicode, SeverityHigh, field, detail})
	}
	if len(control) > 0 {
		s.add(Finding{KindControlCharacter, SeverityMedium, field,
			fmt.Sprintf("%d control or format characters: %s", len(control), listSome(control))})
	}
}

// isInvisible reports the zero-width, bidirectional-control and tag
// characters used to hide text from a human reader.
func isInvisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, // zero-width space, joiners, LRM, RLM
		r >= 0x2060 && r <= 0x2064,   // word joiner, invisible operators
		r == 0xFEFF,                  // zero-width no-break space
		r >= 0x202A && r <= 0x202E,   // bidi embeddings and overrides
		r >= 0x2066 && r <= 0x2069,   // bidi isolates
		r >= 0xE0000 && r <= 0xE007F: // tag characters
		return true
	}
	return false
}

// isEmojiPart reports a rune that can sit next to a zero-width joiner in an
// emoji sequence: a pictograph, a modifier or variation selector 16.
func isEmojiPart(r rune) bool {
	return unicode.Is(unicode.So, r) || unicode.Is(unicode.Sk, r) || r == 0xFE0F || (r >= 0x1F3FB && r <= 0x1F3FF)
}

func nextRune(s string, i int) rune {
	if i >= len(s) {
		return 0
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return r
}

var (
	base64Run = regexp.MustCompile(`[A-Za-z0-9+/_-]{48,}={0,2}`)
	hexRun    = regexp.MustCompile(`\b[0-9A-Fa-f]{64,}\b`)
)

// blobs reports base64 and hex runs. A base64 run that decodes to text is
// scanned again as text, and reported high when that text is poisoned.
func (s *scanner) blobs(field, raw string) {
	for _, m := range hexRun.FindAllString(raw, 4) {
		s.add(Finding{KindEncodedBlob, SeverityMedium, field, fmt.Sprintf("%d hex digits: %q", len(m), clip(m))})
	}
	for _, m := range base64Run.FindAllString(raw, 4) {
		if !mixedClasses(m) {
			continue
		}
		decoded, ok := decodeBase64(m)
		if !ok {
			continue
		}
		f := Finding{KindEncodedBlob, SeverityMedium, field, fmt.Sprintf("%d base64 characters: %q", len(m), clip(m))}
		if utf8.Valid(decoded) && printable(string(decoded)) {
			inner := scanner{self: s.self}
			inner.text(field, string(decoded), true)
			if HasHigh(inner.findings) {
				f.Severity = SeverityHigh
			}
			f.Detail += fmt.Sprintf(", decodes to %q", clip(string(decoded)))
		}
		s.add(f)
	}
}

// mixedClasses reports whether a run mixes upper case, lower case and digits,
// as encoded data does and long identifiers do not.
func mixedClasses(s string) bool {
	var upper, lower, digit bool
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= '0' && r <= '9':
			digit = true
		}
	}
	return upper && lower && digit
}

func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// json scans every key and string value of a JSON field. Text that is not
// valid JSON is scanned as one string.
func (s *scanner) json(field string, raw json.RawMessage) {
	if isAbsent(raw) {
		return
	}
	c, err := canonicalJSON(raw)
	if err != nil {
		s.add(Finding{KindMalformedJSON, SeverityHigh, field, clip(err.Error())})
		s.text(field, string(raw), true)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(c))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		s.text(field, string(raw), true)
		return
	}
	s.walk(field, v, 0)
}

func (s *scanner) walk(path string, v any, depth int) {
	if depth > maxJSONDepth || len(s.findings) >= maxFindings {
		return
	}
	switch t := v.(type) {
	case string:
		s.text(path, t, true)
	case []any:
		for i, e := range t {
			s.walk(fmt.Sprintf("%s[%d]", path, i), e, depth+1)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(t)) {
			s.text(path+"."+k+" (key)", k, false)
			s.walk(path+"."+k, t[k], depth+1)
		}
	}
}

// homoglyphs maps look-alike letters from other scripts (and digits that
// pass for letters) to the Latin letter they imitate.
var homoglyphs = map[rune]rune{
	'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'х': 'x', 'і': 'i', 'у': 'y', 'к': 'k', 'м': 'm', 'т': 't', 'н': 'h',
	'ο': 'o', 'α': 'a', 'ε': 'e', 'ι': 'i', 'ν': 'v', 'κ': 'k', 'τ': 't', 'ρ': 'p',
}

// normalise prepares text for phrase matching: lower case, invisible
// characters dropped (so "ign\u200bore" still reads "ignore"), look-alike
// letters folded, whitespace collapsed. separators also turns _ - into
// spaces, for schema keys such as "content_from_reading_ssh_id_rsa".
func normalise(s string, separators bool) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range strings.ToLower(s) {
		if isInvisible(r) || unicode.Is(unicode.Cf, r) {
			continue
		}
		if h, ok := homoglyphs[r]; ok {
			r = h
		}
		if separators && (r == '_' || r == '-') {
			r = ' '
		}
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

var sentenceEnd = regexp.MustCompile(`[.!?;](\s|$)`)

// splitSentences splits normalised text at sentence ends.
func splitSentences(s string) []string { return sentenceEnd.Split(s, -1) }

func firstNonEmpty(ss []string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// clip shortens s for a finding's detail and spells out invisible
// characters.
func clip(s string) string {
	const max = 120
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return Visible(s)
}

func listSome(items []string) string {
	const show = 3
	if len(items) <= show {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:show], ", ") + fmt.Sprintf(" and %d more", len(items)-show)
}

// Visible spells out invisible, bidirectional, control and format
// characters as <U+XXXX> so that text shown to an operator (in a diff, a
// list, a finding) is the text the model reads. Tabs and newlines are kept.
func Visible(s string) string {
	if !strings.ContainsFunc(s, needsEscape) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if needsEscape(r) {
			fmt.Fprintf(&b, "<U+%04X>", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func needsEscape(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return r == utf8.RuneError || isInvisible(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}
