package detect

import (
	"bytes"
	"math"
	"strings"
	"unicode/utf8"
)

// Secret-like names. A strong name ("password", "client_secret") marks any
// non-trivial value as a secret; a weak one ("token", "key") only a value
// that looks random (long, mixed, high Shannon entropy).
const (
	wStrong   = 1 << iota // a strong name on its own
	wFirst                // first word of a strong pair ("api" in "api key")
	wSecond               // second word of a strong pair
	wWeakLast             // a weak name when it ends the key
	wAWS
	wMeta   // ends a name that describes a secret rather than holding it
	wOpaque // names an identifier that is opaque but no secret ("page token")
)

// opaqueWords name values that look random without being secrets: a page
// or sync token, an idempotency, cache or object key.
var opaqueWords = map[string]bool{
	"page": true, "cursor": true, "continuation": true, "sync": true, "idempotency": true,
	"cache": true, "object": true, "etag": true, "request": true, "correlation": true, "trace": true,
}

// metaWords, ending a name, make it name something about a secret
// ("password_changed_at", "private_key_path", "access_token_ttl",
// "secretName"), not the secret itself.
var metaWords = map[string]bool{
	"at": true, "url": true, "uri": true, "ttl": true, "path": true, "file": true, "dir": true,
	"arn": true, "name": true, "expires": true, "expiry": true, "expiration": true, "length": true,
	"type": true, "hint": true, "policy": true, "changed": true, "reset": true, "required": true,
	"enabled": true, "count": true, "created": true, "updated": true, "version": true,
	"location": true, "format": true, "algorithm": true, "endpoint": true, "rotation": true,
}

// nameWord classifies one lower-case word of a field name.
func nameWord(w []byte) uint8 {
	if len(w) < 2 {
		return 0
	}
	if metaWords[string(w)] {
		return wMeta
	}
	if opaqueWords[string(w)] {
		return wOpaque
	}
	// Dispatch on the first letter so that most words cost one comparison.
	switch w[0] {
	case 'a':
		switch string(w) {
		case "apikey", "accesstoken", "authtoken":
			return wStrong
		case "api", "access":
			return wFirst
		case "auth":
			return wFirst | wWeakLast
		case "authorization":
			return wWeakLast
		case "aws":
			return wAWS
		}
	case 'b':
		if string(w) == "bearer" {
			return wFirst
		}
	case 'c':
		switch string(w) {
		case "credential", "credentials", "clientsecret":
			return wStrong
		case "cookie":
			return wWeakLast
		}
	case 'e':
		if string(w) == "encryption" {
			return wFirst
		}
	case 'i':
		if string(w) == "id" {
			return wFirst
		}
	case 'k':
		if string(w) == "key" {
			return wSecond | wWeakLast
		}
	case 'm':
		if string(w) == "master" {
			return wFirst
		}
	case 'p':
		switch string(w) {
		case "password", "passwd", "pwd", "passphrase", "privatekey":
			return wStrong
		case "private":
			return wFirst
		}
	case 'r':
		switch string(w) {
		case "refreshtoken":
			return wStrong
		case "refresh":
			return wFirst
		}
	case 's':
		switch string(w) {
		case "secret", "secrets", "secretkey":
			return wStrong
		case "session":
			return wFirst | wWeakLast
		case "signing":
			return wFirst
		case "signature", "sig":
			return wWeakLast
		}
	case 't':
		if string(w) == "token" {
			return wSecond | wWeakLast
		}
	}
	return 0
}

type keyStrength int

const (
	keyPlain keyStrength = iota
	keyWeak
	keyStrong
)

// classifyKey splits a name into words (on punctuation and camelCase humps)
// and reports how strongly it names a secret, and whether it names an AWS
// secret access key. Pairs ("api key", "access_token") count as strong.
func classifyKey(k []byte) (keyStrength, bool) {
	if len(k) == 0 || len(k) > 80 {
		return keyPlain, false
	}
	var buf [32]byte
	var prev, last uint8
	strength := keyPlain
	aws, opaque := false, false
	for i := 0; i < len(k); {
		for i < len(k) && !isAlnum(k[i]) {
			i++
		}
		s := i
		for i < len(k) && isAlnum(k[i]) {
			i++
			// Break before an upper-case letter that follows a lower-case one.
			if i < len(k) && k[i] >= 'A' && k[i] <= 'Z' && k[i-1] >= 'a' && k[i-1] <= 'z' {
				break
			}
		}
		if s == i {
			continue
		}
		var f uint8
		if i-s <= len(buf) {
			w := buf[:i-s]
			for j := range w {
				w[j] = lower(k[s+j])
			}
			f = nameWord(w)
		}
		if f&wAWS != 0 {
			aws = true
		}
		if f&wOpaque != 0 {
			opaque = true
		}
		if f&wStrong != 0 || (prev&wFirst != 0 && f&wSecond != 0) {
			strength = keyStrong
		}
		prev, last = f, f
	}
	if last&wMeta != 0 || (opaque && strength != keyStrong) {
		return keyPlain, false
	}
	// "SecretAccessKey", "secret_access_key": the AWS name without "aws".
	if strength != keyPlain && lettersContain(k, "secretaccesskey") {
		aws = true
	}
	if strength == keyPlain && last&wWeakLast != 0 {
		strength = keyWeak
	}
	return strength, aws && strength != keyPlain
}

// lettersContain reports whether the letters of k, lower-cased and with
// everything else dropped, contain word (lower case).
func lettersContain(k []byte, word string) bool {
	var buf [80]byte
	n := 0
	for _, c := range k {
		if isLetter(c) && n < len(buf) {
			buf[n] = lower(c)
			n++
		}
	}
	return strings.Contains(string(buf[:n]), word)
}

func eqFold(b []byte, s string) bool { return len(b) == len(s) && hasPrefixFold(b, s) }

// secretValue decides whether v, held under a name of the given strength,
// is a secret.
func secretValue(v []byte, strength keyStrength) bool {
	if len(v) == 0 || len(v) > 4096 {
		return false
	}
	switch strength {
	case keyStrong:
		if len(v) < 4 || placeholder(v) || locator(v) {
			return false
		}
		return true
	case keyWeak:
		if len(v) < 16 || isUUID(v) || bytes.IndexByte(v, ':') >= 0 {
			return false
		}
		letters, digits := false, false
		for _, c := range v {
			switch {
			case c == ' ' || c == '\n' || c == '\t':
				return false
			case isDigit(c):
				digits = true
			case isLetter(c):
				letters = true
			}
		}
		return letters && digits && entropy(v) >= 3.5
	}
	return false
}

// placeholder reports values that stand for no secret: masks, nulls, our
// own redaction markers.
func placeholder(v []byte) bool {
	if oneRune(v) {
		return true
	}
	if v[0] == '[' && v[len(v)-1] == ']' || v[0] == '<' && v[len(v)-1] == '>' || v[0] == '$' && v[1] == '{' ||
		v[0] == '(' && v[len(v)-1] == ')' || hasPrefix(v, "{{") && bytes.HasSuffix(v, []byte("}}")) {
		return true
	}
	// An environment variable named as the value: "$DB_PASSWORD".
	if v[0] == '$' && len(v) > 1 && (isUpper(v[1]) || v[1] == '_') && upperName(v[1:]) {
		return true
	}
	for _, p := range []string{"null", "none", "true", "false", "redacted", "changeme", "undefined", "replace_me", "replaceme"} {
		if eqFold(v, p) {
			return true
		}
	}
	// "YOUR_API_KEY", "your-password-here", "***REDACTED***", "••••".
	if hasPrefixFold(v, "your_") || hasPrefixFold(v, "your-") || bytes.Contains(bytes.ToLower(v), []byte("redacted")) {
		return true
	}
	return hasPrefix(v, "tok_") || hasPrefix(v, "hash_")
}

// isUUID reports the 8-4-4-4-12 hex shape of a UUID: an identifier.
func isUUID(v []byte) bool {
	if len(v) != 36 {
		return false
	}
	for i, c := range v {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !isHex(c) {
			return false
		}
	}
	return true
}

// upperName reports whether b is an upper-case identifier (A-Z, 0-9, _).
func upperName(b []byte) bool {
	for _, c := range b {
		if !isUpper(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// oneRune reports whether b repeats one character, as masks do ("****",
// "••••"); a byte that is not UTF-8 counts as a character of its own.
func oneRune(b []byte) bool {
	_, n := utf8.DecodeRune(b)
	for i := n; i < len(b); i += n {
		if !bytes.Equal(b[i:min(i+n, len(b))], b[:n]) {
			return false
		}
	}
	return true
}

// locator reports values that point at a secret rather than hold it: a
// path or a URL without credentials in it.
func locator(v []byte) bool {
	// A path has more than one '/' and no base64 padding or '+': a base64
	// secret ("/lhgo…8LUB") may start with '/'.
	if (v[0] == '/' || hasPrefix(v, "~/") || hasPrefix(v, "./")) &&
		bytes.Count(v, []byte("/")) >= 2 && !bytes.ContainsAny(v, "+=") {
		return true
	}
	if i := bytes.Index(v, []byte("://")); i > 0 && isLetter(v[0]) {
		rest := v[i+3:]
		if end := bytes.IndexAny(rest, "/?#"); end >= 0 {
			rest = rest[:end]
		}
		return !bytes.Contains(rest, []byte("@"))
	}
	return false
}

// entropy is the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	var counts [256]uint16
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	h := 0.0
	for _, c := range counts {
		if c == 0 {
			continue
		}
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	return h
}

// keyedValue checks the whole text against the name of the field that
// holds it: {"password": "…"}.
func (sc *scan) keyedValue() {
	strength, aws := classifyKey(sc.key)
	if strength == keyPlain {
		return
	}
	v := sc.t
	s, e := 0, len(v)
	for s < e && (v[s] == ' ' || v[s] == '\t' || v[s] == '\n' || v[s] == '\r') {
		s++
	}
	for e > s && (v[e-1] == ' ' || v[e-1] == '\t' || v[e-1] == '\n' || v[e-1] == '\r') {
		e--
	}
	if !secretValue(v[s:e], strength) {
		return
	}
	class := GenericSecret
	if aws && e-s == 40 {
		class = AWSSecretKey
	}
	sc.emit(class, s, e, 0.8)
}

// keyValue handles "name: value" and "name=value" in free text when name is
// secret-like. i is the index of the ':' or '='.
func (sc *scan) keyValue(i int) {
	t := sc.t
	if t[i] == ':' && hasPrefix(t[i+1:], "//") {
		sc.urlPassword(i)
		return
	}
	// The name: skip back over quotes and spaces, then an identifier.
	e := i
	for e > 0 && (t[e-1] == '"' || t[e-1] == '\'' || t[e-1] == ' ') && i-e < 3 {
		e--
	}
	s := e
	for s > 0 && e-s < 64 && (isWord(t[s-1]) || t[s-1] == '-' || t[s-1] == '.') {
		s--
	}
	// Names start with a letter or '_' ("10:30" is a time, not a name).
	if e-s < 2 || isDigit(t[s]) {
		return
	}
	strength, aws := classifyKey(t[s:e])
	if strength == keyPlain {
		return
	}
	// The value: skip spaces and an opening quote, read to the closing
	// quote or the next separator.
	v := i + 1
	for v < len(t) && t[v] == ' ' && v-i < 4 {
		v++
	}
	var quote byte
	if v < len(t) && (t[v] == '"' || t[v] == '\'') {
		quote = t[v]
		v++
	}
	ve := v
	for ve < len(t) && ve-v < 4096 {
		c := t[ve]
		if quote != 0 {
			if c == quote || c == '\n' {
				break
			}
		} else if c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ',' || c == ';' || c == '&' || c == '"' || c == '\'' || c == '}' || c == ')' {
			break
		}
		ve++
	}
	val := t[v:ve]
	if !secretValue(val, strength) {
		return
	}
	// In prose a short plain word after "password:" is more likely
	// instructions than a password ("password: click the link"), and so is
	// a word that says what state it is in ("password: required").
	if strength == keyStrong && quote == 0 && allLetters(val) && (len(val) < 8 || stateWords[string(bytes.ToLower(val))]) {
		return
	}
	class := GenericSecret
	if aws && ve-v == 40 {
		class = AWSSecretKey
	}
	sc.emit(class, v, ve, 0.8)
}

// stateWords describe a secret's state in prose ("password: required").
var stateWords = map[string]bool{
	"required": true, "incorrect": true, "unchanged": true, "disabled": true, "enabled": true,
	"invalid": true, "expired": true, "missing": true, "optional": true, "provided": true,
	"hidden": true, "masked": true, "updated": true, "changed": true, "rejected": true, "accepted": true,
}

// urlPassword finds the password in a URL's user information
// ("postgres://app:S3cret@db/prod", "amqp://guest:pw@mq:5672/"). i is the
// index of the ':' before "//". The password alone is reported: the user
// and host stay readable.
func (sc *scan) urlPassword(i int) {
	t := sc.t
	s := i
	for s > 0 && (isAlnum(t[s-1]) || t[s-1] == '+' || t[s-1] == '-' || t[s-1] == '.') && i-s < 32 {
		s--
	}
	if i-s < 2 || !isLetter(t[s]) {
		return // not a scheme
	}
	u := i + 3
	e := u
	for e < len(t) && e-u < 1024 {
		c := t[e]
		if c == '/' || c == '?' || c == '#' || c == ' ' || c == '\n' || c == '\t' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' {
			break
		}
		e++
	}
	at := bytes.LastIndexByte(t[u:e], '@')
	if at < 0 {
		return
	}
	colon := bytes.IndexByte(t[u:u+at], ':')
	if colon < 0 {
		return
	}
	ps, pe := u+colon+1, u+at
	if pe-ps < 1 || placeholder(t[ps:pe]) {
		return
	}
	sc.emit(GenericSecret, ps, pe, 0.95)
}

func allLetters(b []byte) bool {
	for _, c := range b {
		if !isLetter(c) {
			return false
		}
	}
	return true
}
