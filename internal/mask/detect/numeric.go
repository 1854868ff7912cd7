package detect

// Digit-group candidates: payment cards, phone numbers, US SSNs and IPv4
// addresses all start as a run of digit groups joined by single separators.
// One parse feeds all four validators; the best-scoring reading wins.

const (
	maxGroups = 10
	maxDigits = 24
)

// group is one run of digits; sep is the separator before it (0 for the
// first, ')' after a parenthesized group with no space).
type group struct {
	s, e  int
	sep   byte
	paren bool
}

func (g group) len() int { return g.e - g.s }

type numSpan struct {
	t          []byte
	start, end int
	plus       bool
	anyParen   bool
	g          [maxGroups]group
	ng         int
	digits     int
	ext        bool
}

var (
	phoneWords = newWordSet("phone", "tel", "telephone", "mobile", "cell", "fax", "office", "desk", "call", "contact", "sms", "whatsapp", "answer", "reach", "dial", "message", "text me", "ring", "landline", "hotline")
	phoneNeg   = newWordSet("order", "invoice", "license", "licence", "ssn", "isbn", "tracking", "serial", "ref", "id", "zip", "postal", "account", "card", "version", "build", "sku", "amount", "total", "price",
		"case", "ticket", "voucher", "code", "po", "part", "model", "duns", "fedex", "ups", "dhl", "shipment", "parcel", "error", "ports")
	ssnNeg    = newWordSet("order", "invoice", "ticket", "case", "part", "model", "serial", "sku", "ref", "po", "tracking", "phone", "tel")
	cardWords = newWordSet("card", "credit", "debit", "cc", "visa", "mastercard", "amex", "american express", "discover", "jcb", "diners", "maestro", "unionpay", "pan", "payment", "cvv", "cvc", "expir", "exp_month", "exp_year", "billing", "charge")
	cardNeg   = newWordSet("order", "invoice", "tracking", "isbn", "serial", "ref", "id", "phone", "tel", "sku", "account")
	ssnWords  = newWordSet("ssn", "social security", "social sec", "social", "ss#", "ss #", "ss no", "ssa", "taxpayer")
	ipWords   = newWordSet("ip", "address", "addr", "host", "server", "client", "gateway", "dns", "subnet", "remote", "peer", "src", "dst")
	ipNeg     = newWordSet("version", "ver", "v.", "release", "build", "firmware", "oid", "sdk", "chrome", "firefox",
		"section", "kernel", "update", "upgrade", "install", "==", "§")
)

func (sp *numSpan) add(s, e int, sep byte, paren bool) bool {
	if sp.ng == maxGroups {
		return false
	}
	sp.g[sp.ng] = group{s: s, e: e, sep: sep, paren: paren}
	sp.ng++
	sp.digits += e - s
	if paren {
		sp.anyParen = true
	}
	return true
}

// numeric parses the digit-group candidate starting at i (a digit, '+' or
// '(') and reports what it is. It returns the index to resume scanning at.
func (sc *scan) numeric(i int) int {
	t := sc.t
	n := len(t)
	var sp numSpan
	sp.t = t
	sp.start = i
	p := i
	if t[p] == '+' {
		sp.plus = true
		p++
	}
	var sep byte
	full := false
	for !full {
		if p < n && t[p] == '(' {
			q := p + 1
			for q < n && isDigit(t[q]) {
				q++
			}
			if q == p+1 || q >= n || t[q] != ')' || q-p-1 > 5 {
				break
			}
			if !sp.add(p+1, q, sep, true) {
				full = true
				break
			}
			p = q + 1
			if p < n && isDigit(t[p]) {
				sep = ')'
				continue
			}
			if p+1 < n && (t[p] == ' ' || t[p] == '-') && isDigit(t[p+1]) {
				sep = t[p]
				p++
				continue
			}
			break
		}
		q := p
		for q < n && isDigit(t[q]) {
			q++
		}
		if q == p {
			break
		}
		if !sp.add(p, q, sep, false) {
			full = true
		}
		p = q
		if p+1 < n && (t[p] == ' ' || t[p] == '-' || t[p] == '.' || t[p] == '/') &&
			(isDigit(t[p+1]) || (t[p] == ' ' && t[p+1] == '(')) {
			sep = t[p]
			p++
			continue
		}
		break
	}
	if sp.ng == 0 {
		return i + 1
	}
	if full || sp.digits > maxDigits {
		// A long run of digit groups: not one of ours. Skip all of it.
		for p < n && (isDigit(t[p]) || t[p] == ' ' || t[p] == '-' || t[p] == '.' || t[p] == '/') {
			p++
		}
		return p
	}
	sp.end = p
	// Phone extension: "x036", "ext. 12", " x12".
	if x := p; x < n && sp.digits >= 7 {
		if t[x] == ' ' && x+1 < n {
			x++
		}
		if t[x] == 'x' || t[x] == 'X' || hasPrefixFold(t[x:], "ext") {
			q := x + 1
			if t[x] != 'x' && t[x] != 'X' {
				q = x + 3
			}
			if q < n && t[q] == '.' {
				q++
			}
			if q < n && t[q] == ' ' {
				q++
			}
			d := q
			for q < n && isDigit(t[q]) {
				q++
			}
			if q > d && q-d <= 6 && (q == n || !isWord(t[q])) {
				sp.ext = true
				sp.end = q
				p = q
			}
		}
	}
	if p < n && isWord(t[p]) {
		// Digits glued to letters: a hex token, an identifier, a unit.
		if !sp.plus && !sp.anyParen && isHex(t[i]) {
			if e, ok := sc.ipv6(i); ok {
				return e
			}
		}
		return skipWord(t, p)
	}
	if p < n && t[p] == ':' && !sp.plus && !sp.anyParen {
		if e, ok := sc.ipv6(i); ok {
			return e
		}
	}
	if sp.digits < 7 && sp.ng < 4 {
		return sp.end // too short for anything but an IPv4 address, which has four groups
	}
	if sp.isDate() {
		return sp.end
	}

	class, s, e, score := "", 0, 0, 0.0
	consider := func(c string, cs, ce int, v float64) {
		if v > score {
			class, s, e, score = c, cs, ce, v
		}
	}
	if cs, ce, v := sc.ipv4(&sp); v > 0 {
		consider(IPAddress, cs, ce, v)
	}
	if v := sc.ssn(&sp); v > 0 {
		consider(USSSN, sp.start, sp.end, v)
	}
	if v := sc.card(&sp); v > 0 {
		consider(CreditCard, sp.start, sp.end, v)
	}
	if v := sc.phone(&sp); v > 0 {
		consider(Phone, sp.start, sp.end, v)
	}
	if class != "" {
		sc.emit(class, s, e, score)
	}
	return sp.end
}

// forEachDigit calls f with each digit of the span, left to right.
func (sp *numSpan) forEachDigit(t []byte, f func(d byte)) {
	for gi := 0; gi < sp.ng; gi++ {
		for j := sp.g[gi].s; j < sp.g[gi].e; j++ {
			f(t[j] - '0')
		}
	}
}

func groupValue(t []byte, g group) int {
	v := 0
	for j := g.s; j < g.e && j < g.s+6; j++ {
		v = v*10 + int(t[j]-'0')
	}
	return v
}

// isDate reports whether the span begins like a calendar date:
// YYYY-MM-DD, DD/MM/YYYY, MM.DD.YY and the like, with one separator kind.
func (sp *numSpan) isDate() bool {
	if sp.ng < 3 || sp.plus || sp.anyParen {
		return false
	}
	a, b, c := sp.g[0], sp.g[1], sp.g[2]
	if b.sep != c.sep || (b.sep != '-' && b.sep != '/' && b.sep != '.') {
		return false
	}
	if b.len() > 2 {
		return false
	}
	// isDate is only called on digit spans, so values are small.
	va, vb, vc := groupValue(sp.t, a), groupValue(sp.t, b), groupValue(sp.t, c)
	switch {
	case a.len() == 4 && c.len() <= 2: // year first
		return vb >= 1 && vb <= 12 && vc >= 1 && vc <= 31
	case a.len() <= 2 && (c.len() == 4 || (c.len() == 2 && b.sep != '-')): // day or month first
		return va >= 1 && vb >= 1 && va <= 31 && vb <= 31 && (va <= 12 || vb <= 12)
	}
	return false
}

// ipv4 recognizes four dot-separated octets at the start of the span.
func (sc *scan) ipv4(sp *numSpan) (int, int, float64) {
	if sp.ng < 4 || sp.plus || sp.anyParen || sp.ext {
		return 0, 0, 0
	}
	for k := 0; k < 4; k++ {
		g := sp.g[k]
		if (k > 0 && g.sep != '.') || g.len() > 3 || (g.len() > 1 && sc.t[g.s] == '0') || groupValue(sc.t, g) > 255 {
			return 0, 0, 0
		}
	}
	if sp.ng > 4 && sp.g[4].sep == '.' {
		return 0, 0, 0 // "1.2.3.4.5": a version or an OID
	}
	s, e := sp.g[0].s, sp.g[3].e
	score := 0.6
	if sc.negContext(s, ipNeg) {
		score -= 0.4
	}
	if sc.context(s, e, ipWords) {
		score += 0.3
	}
	return s, e, score
}

// ssn recognizes US social security numbers: AAA-GG-SSSS (dashes or
// spaces) on its own, or nine bare digits next to a context word.
func (sc *scan) ssn(sp *numSpan) float64 {
	if sp.plus || sp.anyParen || sp.ext || sp.digits != 9 {
		return 0
	}
	var score float64
	switch {
	case sp.ng == 3 && sp.g[0].len() == 3 && sp.g[1].len() == 2 && sp.g[2].len() == 4 &&
		sp.g[1].sep == sp.g[2].sep && (sp.g[1].sep == '-' || sp.g[1].sep == ' '):
		score = 0.5
		if sp.g[1].sep == ' ' {
			score = 0.4
		}
	case sp.ng == 1:
		score = 0.15
	default:
		return 0
	}
	var d [9]byte
	k := 0
	sp.forEachDigit(sc.t, func(x byte) { d[k] = x; k++ })
	area := int(d[0])*100 + int(d[1])*10 + int(d[2])
	grp := int(d[3])*10 + int(d[4])
	serial := int(d[5])*1000 + int(d[6])*100 + int(d[7])*10 + int(d[8])
	if area == 0 || area == 666 || area >= 900 || grp == 0 || serial == 0 {
		return 0
	}
	if sc.negContext(sp.start, ssnNeg) {
		score -= penalty // "Ticket 123-45-6788", "Part number 245-10-3310"
	}
	same := true
	for _, x := range d[1:] {
		if x != d[0] {
			same = false
		}
	}
	// Well-known invalid or advertising numbers.
	if same || (area == 123 && grp == 45 && serial == 6789) || (area == 78 && grp == 5 && serial == 1120) || (area == 219 && grp == 9 && serial == 9999) {
		return 0
	}
	if sc.context(sp.start, sp.end, ssnWords) {
		score += 0.4
	} else if sp.ng == 1 {
		return 0 // bare nine digits only with a context word
	}
	return score
}

// card recognizes payment card numbers: 12-19 digits, bare or grouped as
// cards are printed, passing Luhn; a known issuer range raises the score.
func (sc *scan) card(sp *numSpan) float64 {
	if sp.plus || sp.anyParen || sp.ext || sp.digits < 12 || sp.digits > 19 {
		return 0
	}
	grouped := sp.ng > 1
	if grouped {
		sep := sp.g[1].sep
		if sep != ' ' && sep != '-' {
			return 0
		}
		for k := 1; k < sp.ng; k++ {
			if sp.g[k].sep != sep {
				return 0
			}
		}
		if !cardGrouping(sp) {
			return 0
		}
	}
	var d [19]byte
	k := 0
	sp.forEachDigit(sc.t, func(x byte) { d[k] = x; k++ })
	if !luhn(d[:k]) {
		return 0
	}
	var score float64
	switch {
	case !knownIIN(d[:k]):
		score = 0.25
	case grouped:
		score = 0.6
	case k >= 15:
		score = 0.5
	default:
		score = 0.35
	}
	// A word against cards ("order", "id") explains away the number it
	// names. When another number stands between them ("Customer ID 88123
	// paid with 4916…"), the word names that one, and a number of a card's
	// length in an issuer's range that passes Luhn keeps its score.
	strong := knownIIN(d[:k]) && (grouped || k >= 15)
	if sc.negContext(sp.start, cardNeg) && !(strong && numberBefore(sc.t, sp.start)) {
		score -= penalty
	}
	if sc.context(sp.start, sp.end, cardWords) {
		score += 0.4
	}
	return score
}

// numberBefore reports whether a digit occurs in the negative-context
// window before start.
func numberBefore(t []byte, start int) bool {
	for _, c := range t[max(start-negCtxBefore, 0):start] {
		if isDigit(c) {
			return true
		}
	}
	return false
}

// cardGrouping accepts the ways card numbers are printed: 4-4-4-4(-3),
// 4-6-5 (Amex), 4-6-4 (Diners).
func cardGrouping(sp *numSpan) bool {
	l := func(k int) int { return sp.g[k].len() }
	if sp.ng == 3 && l(0) == 4 && l(1) == 6 && (l(2) == 5 || l(2) == 4) {
		return true
	}
	for k := 0; k < sp.ng-1; k++ {
		if l(k) != 4 {
			return false
		}
	}
	return l(sp.ng-1) >= 1 && l(sp.ng-1) <= 4
}

func luhn(d []byte) bool {
	sum := 0
	double := false
	for k := len(d) - 1; k >= 0; k-- {
		x := int(d[k])
		if double {
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
		double = !double
	}
	return sum%10 == 0
}

// knownIIN checks the issuer prefix and length against the major networks.
func knownIIN(d []byte) bool {
	n := len(d)
	p := func(k int) int {
		v := 0
		for i := 0; i < k && i < n; i++ {
			v = v*10 + int(d[i])
		}
		return v
	}
	p2, p3, p4, p6 := p(2), p(3), p(4), p(6)
	switch {
	case d[0] == 4: // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // Amex
		return n == 15
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p6 >= 622126 && p6 <= 622925: // Discover
		return n >= 16 && n <= 19
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16 && n <= 19
	case p4 == 2131 || p4 == 1800: // JCB, legacy 15-digit
		return n == 15
	case p3 >= 300 && p3 <= 305, p4 == 3095, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return n >= 14 && n <= 19
	case p2 == 62: // UnionPay
		return n >= 16 && n <= 19
	case p2 == 50, p2 >= 56 && p2 <= 69: // Maestro
		return n >= 12 && n <= 19
	}
	return false
}

// phone recognizes international (+CC) and national phone numbers written
// with separators, and bare digit runs next to a context word.
func (sc *scan) phone(sp *numSpan) float64 {
	d := sp.digits
	if d < 7 || d > 15 || (sp.plus && d < 8) {
		return 0
	}
	t := sc.t
	l := func(k int) int { return sp.g[k].len() }
	singles, dots := 0, true
	for k := 0; k < sp.ng; k++ {
		if l(k) == 1 {
			singles++
		}
		if k > 0 && sp.g[k].sep != '.' {
			dots = false
		}
	}
	if dots && singles > 1 {
		return 0 // "1.3.6.1.4": an identifier, not a dialable number
	}
	var score float64
	switch {
	case sp.plus:
		score = 0.7
	case sp.ng >= 2 && l(0) >= 3 && t[sp.g[0].s] == '0' && t[sp.g[0].s+1] == '0':
		score = 0.6 // 00 international prefix
	case sp.ng == 3 && l(0) == 3 && l(1) == 2 && l(2) == 4 && sp.g[1].sep == sp.g[2].sep && (sp.g[1].sep == '-' || sp.g[1].sep == ' '):
		score = 0.3 // shaped like an SSN
	case sp.anyParen && sp.ng >= 2:
		score = 0.6
	case sp.ng == 3 && l(0) == 3 && l(1) == 3 && l(2) == 4 && sp.g[1].sep == sp.g[2].sep && sp.g[1].sep != '/':
		score = 0.6 // North American 3-3-4
	case sp.ng >= 3 && thousandsLike(sp):
		score = 0.35
	case sp.ng >= 3 && d >= 9:
		score = 0.5
	case sp.ng >= 3:
		score = 0.4
	case sp.ng == 2 && d >= 10 && t[sp.g[0].s] == '0':
		score = 0.5 // trunk prefix 0 and a subscriber number
	case sp.ng == 2:
		score = 0.35
	case d == 10 || d == 11:
		score = 0.3
	case d <= 9:
		score = 0.2
	default:
		score = 0.1
	}
	for k := 1; k < sp.ng; k++ {
		if sp.g[k].sep == '/' && sp.ng > 2 {
			score -= 0.2 // slashes between several groups read as a fraction or a path
			break
		}
	}
	if score+boost < sc.s.threshold {
		return 0
	}
	if sc.negContext(sp.start, phoneNeg) {
		score -= penalty
	}
	if sc.context(sp.start, sp.end, phoneWords) {
		score += boost
	}
	return score
}

// thousandsLike reports "1 234 567"-style digit grouping (a quantity).
func thousandsLike(sp *numSpan) bool {
	if sp.g[0].len() > 3 || sp.anyParen {
		return false
	}
	for k := 1; k < sp.ng; k++ {
		if sp.g[k].len() != 3 || sp.g[k].sep != sp.g[1].sep {
			return false
		}
	}
	return true
}
