package detect

import (
	"bytes"
	"encoding/base64"
	"net/netip"
	"unicode/utf8"
)

var (
	ibanWords  = newWordSet("iban", "account", "bank", "transfer", "wire", "swift", "bic", "payee")
	emailImage = []string{"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "avif", "heic"}
)

// word handles a candidate that starts with a letter at a word boundary:
// IBANs, token prefixes, hex IPv6 addresses, "Bearer <token>". It returns
// the index to resume at.
func (sc *scan) word(i int) int {
	t := sc.t
	n := len(t)
	end := skipWord(t, i)
	if i+4 <= n && isLetter(t[i+1]) && isDigit(t[i+2]) && isDigit(t[i+3]) {
		if e := sc.iban(i); e > 0 {
			return e
		}
	}
	switch t[i] {
	case 'A':
		if end-i == 20 && (hasPrefix(t[i:], "AKIA") || hasPrefix(t[i:], "ASIA")) && upperAlnum(t[i+4:end]) {
			sc.emit(AWSAccessKey, i, end, 0.9)
			return end
		}
		// A Google API key: "AIza" and 35 more characters.
		if hasPrefix(t[i:], "AIza") {
			if e := runOf(t, i+4, b64urlByte); e-(i+4) == 35 {
				sc.emit(GenericSecret, i, e, 0.9)
				return e
			}
		}
	case 'g':
		if i+4 < n && t[i+1] == 'h' && t[i+3] == '_' && bytes.IndexByte([]byte("pousr"), t[i+2]) >= 0 {
			if e := runOf(t, i+4, isAlnum); e-(i+4) >= 30 {
				sc.emit(GitHubToken, i, e, 0.95)
				return e
			}
		}
		if hasPrefix(t[i:], "github_pat_") && end-i >= 11+40 {
			sc.emit(GitHubToken, i, end, 0.95)
			return end
		}
	case 'x':
		if hasPrefix(t[i:], "xapp-") {
			if e := runOf(t, i+5, func(c byte) bool { return isAlnum(c) || c == '-' }); e-(i+5) >= 20 {
				sc.emit(SlackToken, i, e, 0.9)
				return e
			}
		}
		if i+5 < n && t[i+1] == 'o' && t[i+2] == 'x' && t[i+4] == '-' && bytes.IndexByte([]byte("abprsec"), t[i+3]) >= 0 {
			e := runOf(t, i+5, func(c byte) bool { return isAlnum(c) || c == '-' })
			if e-(i+5) >= 10 {
				sc.emit(SlackToken, i, e, 0.9)
				return e
			}
		}
	case 's', 'r':
		if hasPrefix(t[i+1:], "k_live_") || hasPrefix(t[i+1:], "k_test_") {
			if end-(i+8) >= 16 {
				sc.emit(StripeKey, i, end, 0.95)
				return end
			}
		}
		// Model providers' API keys: "sk-ant-api03-…", "sk-proj-…", "sk-…".
		if t[i] == 's' && hasPrefix(t[i+1:], "k-") {
			if e := runOf(t, i+3, b64urlByte); e-(i+3) >= 32 {
				sc.emit(GenericSecret, i, e, 0.9)
				return e
			}
		}
	case 'w':
		if hasPrefix(t[i:], "whsec_") && end-(i+6) >= 24 {
			sc.emit(StripeKey, i, end, 0.95) // a webhook signing secret
			return end
		}
	case 'e':
		if hasPrefix(t[i:], "eyJ") {
			if e := sc.jwt(i); e > 0 {
				return e
			}
		}
	case 'B', 'b':
		if end-i == 5 && hasPrefixFold(t[i:], "basic") && end < n && t[end] == ' ' {
			// HTTP Basic credentials: base64 of "user:password".
			e := runOf(t, end+1, func(c byte) bool { return isAlnum(c) || c == '+' || c == '/' || c == '=' })
			if dec, err := base64.StdEncoding.DecodeString(string(t[end+1 : e])); err == nil && e-(end+1) >= 8 &&
				bytes.IndexByte(dec, ':') > 0 && utf8.Valid(dec) {
				sc.emit(GenericSecret, end+1, e, 0.85)
				return e
			}
		}
		if end-i == 6 && hasPrefixFold(t[i:], "bearer") && end < n && t[end] == ' ' {
			if knownTokenPrefix(t[end+1:]) {
				return end // the token's own detector names its class
			}
			e := runOf(t, end+1, tokenByte)
			if e-(end+1) >= 16 {
				if hasPrefix(t[end+1:], "eyJ") {
					if je := sc.jwt(end + 1); je > 0 {
						return je
					}
				}
				sc.emit(GenericSecret, end+1, e, 0.8)
				return e
			}
		}
	}
	if end < n && t[end] == ':' && isHex(t[i]) {
		if e, ok := sc.ipv6(i); ok {
			return e
		}
	}
	return end
}

// knownTokenPrefix reports a token whose vendor prefix a detector knows.
func knownTokenPrefix(t []byte) bool {
	for _, p := range []string{"sk_live_", "rk_live_", "sk_test_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "xapp-", "AKIA", "ASIA"} {
		if hasPrefix(t, p) {
			return true
		}
	}
	return false
}

func runOf(t []byte, i int, ok func(byte) bool) int {
	for i < len(t) && ok(t[i]) {
		i++
	}
	return i
}

func upperAlnum(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

func tokenByte(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}

func b64urlByte(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// jwt recognizes header.payload.signature where the header decodes to a
// JSON object naming an algorithm.
func (sc *scan) jwt(i int) int {
	t := sc.t
	h := runOf(t, i, b64urlByte)
	if h-i < 10 || h >= len(t) || t[h] != '.' {
		return 0
	}
	p := runOf(t, h+1, b64urlByte)
	if p-(h+1) < 2 || p >= len(t) || t[p] != '.' {
		return 0
	}
	s := runOf(t, p+1, b64urlByte)
	if s < len(t) && (t[s] == '.' || t[s] == '=') {
		return 0
	}
	var buf [256]byte
	hdr := t[i:h]
	if len(hdr) > 340 {
		hdr = hdr[:340]
	}
	hdr = hdr[:len(hdr)/4*4]
	k, err := base64.RawURLEncoding.Decode(buf[:], hdr)
	if err != nil || k == 0 || buf[0] != '{' || !bytes.Contains(buf[:k], []byte(`"alg"`)) {
		return 0
	}
	sc.emit(JWT, i, s, 0.9)
	return s
}

// iban recognizes an IBAN written compactly or in groups of four, checking
// the country's length and the mod-97 check digits.
func (sc *scan) iban(i int) int {
	t := sc.t
	cc0, cc1 := t[i]&^0x20, t[i+1]&^0x20
	if cc0 < 'A' || cc0 > 'Z' || cc1 < 'A' || cc1 > 'Z' {
		return 0
	}
	want := ibanLength[int(cc0-'A')*26+int(cc1-'A')]
	if want == 0 {
		return 0
	}
	var buf [34]byte
	k := 0
	j := i
	upper, lowerSeen := false, false
	for j < len(t) && k < int(want) {
		c := t[j]
		switch {
		case isAlnum(c):
			if c >= 'a' && c <= 'z' {
				lowerSeen = true
				c &^= 0x20
			} else if c >= 'A' && c <= 'Z' {
				upper = true
			}
			buf[k] = c
			k++
			j++
		case c == ' ' && k%4 == 0 && j+1 < len(t) && isAlnum(t[j+1]):
			j++
		default:
			return 0
		}
	}
	if k != int(want) || (j < len(t) && isWord(t[j])) {
		return 0
	}
	for _, c := range buf[2:4] {
		if !isDigit(c) {
			return 0
		}
	}
	// mod 97 over BBAN + country + check digits, letters as 10..35.
	rem := 0
	for m := 0; m < k; m++ {
		c := buf[(m+4)%k]
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A'+10)) % 97
		}
	}
	if rem != 1 {
		return 0
	}
	score := 0.8
	if upper && lowerSeen {
		score = 0.4
	} else if lowerSeen {
		score = 0.6
	}
	if sc.context(i, j, ibanWords) {
		score += 0.3
	}
	sc.emit(IBAN, i, j, score)
	return j
}

// email recognizes local@domain.tld around the '@' at a.
func (sc *scan) email(a int) int {
	t := sc.t
	s := a
	for s > 0 && a-s < 64 && localByte(t[s-1]) {
		s--
	}
	for s < a && t[s] == '.' {
		s++
	}
	if s == a || t[a-1] == '.' {
		return a + 1
	}
	e := a + 1
	lastDot := -1
	for e < len(t) && e-a < 254 && (isAlnum(t[e]) || t[e] == '-' || t[e] == '.') {
		if t[e] == '.' {
			if e == a+1 || t[e-1] == '.' || t[e-1] == '-' {
				return e
			}
			lastDot = e
		} else if t[e] == '-' && t[e-1] == '.' {
			return e
		}
		e++
	}
	for e > a+1 && (t[e-1] == '.' || t[e-1] == '-') {
		e--
	}
	if lastDot >= e-1 {
		lastDot = bytes.LastIndexByte(t[a+1:e], '.')
		if lastDot < 0 {
			return a + 1
		}
		lastDot += a + 1
	}
	if lastDot < 0 {
		return a + 1
	}
	tld := t[lastDot+1 : e]
	if len(tld) < 2 || len(tld) > 24 {
		return a + 1
	}
	for _, c := range tld {
		if !isLetter(c) {
			return a + 1
		}
	}
	for _, x := range emailImage {
		if len(tld) == len(x) && hasPrefixFold(tld, x) {
			return e
		}
	}
	sc.emit(Email, s, e, 0.9)
	return e
}

func localByte(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\''
}

// pem recognizes a private key block, to its END line or, if the block is
// cut off, to the end of the text.
func (sc *scan) pem(i int) int {
	t := sc.t
	lineEnd := bytes.Index(t[i+11:], []byte("-----"))
	if lineEnd < 0 || lineEnd > 40 {
		return i + 11
	}
	label := t[i+11 : i+11+lineEnd]
	if !bytes.HasSuffix(label, []byte("PRIVATE KEY")) && !bytes.HasSuffix(label, []byte("PRIVATE KEY BLOCK")) {
		return i + 11 + lineEnd
	}
	end := len(t)
	if k := bytes.Index(t[i:], []byte("-----END ")); k >= 0 {
		if m := bytes.Index(t[i+k+9:], []byte("-----")); m >= 0 {
			end = i + k + 9 + m + 5
		}
	}
	sc.emit(PrivateKey, i, end, 1)
	return end
}

// ipv6 tries to read an IPv6 address starting at i.
func (sc *scan) ipv6(i int) (int, bool) {
	t := sc.t
	if bytes.IndexByte(t[i:min(i+5, len(t))], ':') < 0 {
		return 0, false // the first group has at most four hex digits
	}
	e := runOf(t, i, func(c byte) bool { return isHex(c) || c == ':' || c == '.' })
	for e > i && (t[e-1] == '.' || t[e-1] == ':') && !(e-i >= 2 && t[e-1] == ':' && t[e-2] == ':') {
		e--
	}
	if e < len(t) && isWord(t[e]) {
		return 0, false
	}
	colons := bytes.Count(t[i:e], []byte(":"))
	if colons < 2 || e-i < 6 || e-i > 45 {
		return 0, false
	}
	addr, err := netip.ParseAddr(string(t[i:e]))
	if err != nil || !addr.Is6() {
		return 0, false
	}
	score := 0.6
	if sc.context(i, e, ipWords) {
		score += 0.3
	}
	sc.emit(IPAddress, i, e, score)
	return e, true
}

// ibanLength holds the IBAN length per country, indexed by the two letters.
var ibanLength = func() (t [26 * 26]uint8) {
	for cc, n := range map[string]uint8{
		"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
		"BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
		"EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
		"GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
		"JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
		"MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
		"NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
		"SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
		"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
	} {
		t[int(cc[0]-'A')*26+int(cc[1]-'A')] = n
	}
	return t
}()
