package detect

import (
	"strings"
	"testing"
)

// positives: each text must yield exactly the listed class on the listed span.
var positives = []struct {
	name, text, class, want string
}{
	{"email in sentence", "write to jane.doe+x@mail.example.co.uk today", Email, "jane.doe+x@mail.example.co.uk"},
	{"email trailing dot", "Contact: bob@example.com.", Email, "bob@example.com"},
	{"visa grouped", "charged 4111 1111 1111 1111 yesterday", CreditCard, "4111 1111 1111 1111"},
	{"visa bare no context", "4111111111111111", CreditCard, "4111111111111111"},
	{"mastercard 2-series", "card: 2221000000000009", CreditCard, "2221000000000009"},
	{"amex dashed 4-6-5", "amex 3782-822463-10005", CreditCard, "3782-822463-10005"},
	{"maestro 12 digits with context", "debit card 501864667909", CreditCard, "501864667909"},
	{"unionpay", "card 6200000000000005", CreditCard, "6200000000000005"},
	{"iban compact", "IBAN DE89370400440532013000 please", IBAN, "DE89370400440532013000"},
	{"iban spaced", "pay to GB82 WEST 1234 5698 7654 32 now", IBAN, "GB82 WEST 1234 5698 7654 32"},
	{"ssn dashed", "SSN 123-45-6780", USSSN, "123-45-6780"},
	{"ssn dashed no context", "id is 536-22-8741", USSSN, "536-22-8741"},
	{"ssn bare with context", "social security number: 536228741", USSSN, "536228741"},
	{"ipv4", "connect from 192.168.10.1 failed", IPAddress, "192.168.10.1"},
	{"ipv6 compressed", "peer fe80::1ff:fe23:4567:890a dropped", IPAddress, "fe80::1ff:fe23:4567:890a"},
	{"phone international", "call +44 20 7946 0958 now", Phone, "+44 20 7946 0958"},
	{"phone nanp", "reach me at (415) 555-0132", Phone, "(415) 555-0132"},
	{"phone with context", "tel: 06 12 34 56 78", Phone, "06 12 34 56 78"},
	{"phone with extension", "Call (555) 123-4567 ext. 89", Phone, "(555) 123-4567 ext. 89"},
	{"phone with trunk zero in parens", "office +46 (0)8 928 571 38 fax", Phone, "+46 (0)8 928 571 38"},
	{"phone dotted", "Contact: 202.555.0147", Phone, "202.555.0147"},
	{"phone german trunk", "Tel.: +49 (0) 30 1234567", Phone, "+49 (0) 30 1234567"},
	{"ssn spaced with context", "my social is 219 09 9998", USSSN, "219 09 9998"},
	{"iban lower case", "my iban is gb82west12345698765432", IBAN, "gb82west12345698765432"},
	{"ipv6 in brackets", "dial [2001:db8::1]:443", IPAddress, "2001:db8::1"},
	{"aws access key", "key AKIAIOSFODNN7EXAMPLE used", AWSAccessKey, "AKIAIOSFODNN7EXAMPLE"},
	{"aws secret next to name", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AWSSecretKey, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
	{"github token", "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 leaked", GitHubToken, "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"},
	{"slack token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp", SlackToken, "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp"},
	{"stripe key", "STRIPE=sk_live_4eC39HqLyjWDarjtT1zdp7dc", StripeKey, "sk_live_4eC39HqLyjWDarjtT1zdp7dc"},
	{"jwt", "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", JWT, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"},
	{"pem", "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\n-----END RSA PRIVATE KEY-----\ny", PrivateKey, "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\n-----END RSA PRIVATE KEY-----"},
	{"pem cut off", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk", PrivateKey, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk"},
	{"password in text", `db password: "hunter22" ok`, GenericSecret, "hunter22"},
	{"high entropy api key", "API_KEY=Zx8kQ2mP9vL4nR7tW1yB3cD6", GenericSecret, "Zx8kQ2mP9vL4nR7tW1yB3cD6"},
	{"bearer opaque token", "Authorization: Bearer 8f3kd93kdl20dkf9sl2kdf9w", GenericSecret, "8f3kd93kdl20dkf9sl2kdf9w"},
	// A label written straight before the value, or an escape sequence of
	// JSON masked as text, ends the token before it.
	{"card after label colon", "card:4111111111111111", CreditCard, "4111111111111111"},
	{"card after label hash", "CC#5555555555554444", CreditCard, "5555555555554444"},
	{"ssn after label colon", "SSN:234-56-7891", USSSN, "234-56-7891"},
	{"phone after label hash", "Tel#415-555-0132", Phone, "415-555-0132"},
	{"ip after label colon", "inet addr:192.168.7.21 up", IPAddress, "192.168.7.21"},
	{"card after escaped newline", `{"note":"paid with\n4111 1111 1111 1111`, CreditCard, "4111 1111 1111 1111"},
	{"aws key after escaped newline", `key\nAKIAIOSFODNN7EXAMPLE`, AWSAccessKey, "AKIAIOSFODNN7EXAMPLE"},
	{"iban after escaped tab", `\tDE89 3704 0044 0532 0130 00`, IBAN, "DE89 3704 0044 0532 0130 00"},
	// A word against cards names the number next to it, not a card after
	// another number.
	{"card after another id", "Customer ID 88123 paid with 4916338506082832", CreditCard, "4916338506082832"},
	{"card after a reference", "Ref: 7781 - 5425 2334 3010 9903", CreditCard, "5425 2334 3010 9903"},
	{"card beside expiry field", `{"id": 42, "number": "4111111111111111", "exp_month": 12}`, CreditCard, "4111111111111111"},
	// Credentials in URLs and HTTP Basic authorization.
	{"connection string password", "postgres://app:S3cretPw@db.internal.example.com:5432/prod", GenericSecret, "S3cretPw"},
	{"connection string to an address", "postgresql://admin:pa55w0rd@10.0.0.12/prod", GenericSecret, "pa55w0rd"},
	{"amqp url password", "amqp://guest:Rabb1tPw@rabbitmq:5672/", GenericSecret, "Rabb1tPw"},
	{"basic authorization", "Authorization: Basic YWRtaW46c3VwM3JzZWNyZXQ=", GenericSecret, "YWRtaW46c3VwM3JzZWNyZXQ="},
	{"slack app token", "SLACK_APP=xapp-1-A0123456789-1234567890123-abcdef0123456789", SlackToken, "xapp-1-A0123456789-1234567890123-abcdef0123456789"},
	{"slack client token", "cookie xoxc-123456789012-123456789012-1234567890123-abcdef", SlackToken, "xoxc-123456789012-123456789012-1234567890123-abcdef"},
	{"stripe webhook secret", "endpoint secret whsec_5f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c", StripeKey, "whsec_5f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c"},
	{"google api key", "maps key AIzaSyD4x8Jk2LmN0pQrStUvWxYz1234567890a here", GenericSecret, "AIzaSyD4x8Jk2LmN0pQrStUvWxYz1234567890a"},
	{"model provider key", "export KEY=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-xyz", GenericSecret, "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-xyz"},
	{"aws secret under its sdk name", `"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"`, AWSSecretKey, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
	{"github token as bearer", "Authorization: Bearer ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", GitHubToken, "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"},
	{"stripe key as bearer", "Authorization: Bearer sk_live_4eC39HqLyjWDarjtT1zdp7dc", StripeKey, "sk_live_4eC39HqLyjWDarjtT1zdp7dc"},
	{"aws secret starting with a slash", "aws_secret_access_key = /lhgoDV7IkIDKA0IFWrOybl27klTjFC9VlOe8LUB", AWSSecretKey, "/lhgoDV7IkIDKA0IFWrOybl27klTjFC9VlOe8LUB"},
}

func TestPositives(t *testing.T) {
	s := Default()
	for _, tc := range positives {
		t.Run(tc.name, func(t *testing.T) {
			fs := s.Scan([]byte(tc.text), nil, nil)
			for _, f := range fs {
				if f.Class == tc.class && tc.text[f.Start:f.End] == tc.want {
					return
				}
			}
			t.Errorf("want %s %q in %q; got %s", tc.class, tc.want, tc.text, describe(tc.text, fs))
		})
	}
}

// negatives: look-alikes that must not be reported at the default threshold.
var negatives = []struct{ name, text string }{
	{"order number passing luhn", "Your order 4539578763621486 has shipped"},
	{"invoice number passing luhn", "invoice no. 4716 2849 2312 5675 attached"},
	{"unknown issuer luhn number", "batch 9876543210123452 processed"},
	{"tracking number", "tracking 1Z999AA10123456784"},
	{"version string v-prefixed", "upgrade to v1.2.3.4 today"},
	{"five-part version", "build 1.2.3.4.5 released"},
	{"version word before dotted quad", "running version 10.0.0.1 of the agent"},
	{"iso timestamp", "at 2024-01-15T10:30:00Z the job ran"},
	{"date and time", "Date: 1978-04-13 12:20:39"},
	{"slashed date", "due 12/05/2024 at noon"},
	{"dotted date", "born 13.04.1978 in Lyon"},
	{"uuid", "request 550e8400-e29b-41d4-a716-446655440000 done"},
	{"isbn", "ISBN 978-3-16-148410-0"},
	{"isbn 13 bare", "ISBN: 9780306406157"},
	{"price", "total $1,299.99 or €1 299,00"},
	{"quantity with spaces", "population 1 234 567 people"},
	{"unix millis", "ts=1700000000000"},
	{"long digit run", "hash 123456789012345678901234567890"},
	{"ssn invalid area", "SSN 666-12-3456"},
	{"ssn 9xx area", "SSN 912-12-3456"},
	{"bare nine digits without context", "ref 536228741"},
	{"iban bad checksum", "IBAN DE89370400440532013001"},
	{"email image name", "see icon@2x.png"},
	{"time of day", "meeting at 12:30:45"},
	{"mac address", "mac 00:1A:2B:3C:4D:5E"},
	{"hex hash", "commit 3f2a9c1d0e4b5a67e8f90123456789abcdef0123"},
	{"stripe publishable key", "pk_live_51H8mZ2EqUx8vXyZabcdef"},
	{"certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
	{"password placeholder", "password: ********"},
	{"token count", "max_tokens: 4096"},
	{"secretary", "secretary: Jane"},
	{"password instructions", "Forgot your password: click the link below"},
	{"driver license", "my driver's license number is 2270-66-1551"},
	{"short order number", "order #12345678"},
	{"oid", "oid 1.3.6.1.4.1.311"},
	{"woolworth ssn", "SSN: 078-05-1120 is the famous Woolworth number"},
	{"thousands", "Population grew from 8 336 817 to 8 804 190"},
	{"coordinates", "lat/long 37.7749/-122.4194 or 48.8566, 2.3522"},
	{"dotted dates", "Date: 2021.03.04 and 04.03.2021 and 2021/03/04"},
	{"patient id", "Patient ID 4829 3345 visited on 03/04/2023"},
	{"emergency numbers", "Call 911 or 112"},
	{"short codes", "PIN 1234, OTP 567890"},
	{"hex literals", "hex 0x7fffffff and 0xdeadbeef"},
	// Names that describe a secret, and values that point at one or stand
	// in for one.
	{"password changed at", "password_changed_at: 2024-01-15T10:00:00Z"},
	{"password reset url", "password_reset_url: https://example.com/reset?u=42"},
	{"token ttl", "access_token_ttl: 3600"},
	{"key path", "private_key_path: /etc/ssl/private/server.key"},
	{"credentials file", "credentials_file: ~/.aws/credentials"},
	{"secret name", "secretName: app-tls-cert"},
	{"secret expiry", `"client_secret_expires_at": 1735689600`},
	{"working directory", "PWD=/home/ubuntu/app"},
	{"template placeholder", "password: '{{ vault_db_password }}'"},
	{"environment placeholder", "password=$DB_PASSWORD"},
	{"your placeholder", "api_key = YOUR_API_KEY"},
	{"redacted stars", "password: ***REDACTED***"},
	{"bullets", "password: ••••••••"},
	{"state word", "Password: Required"},
	{"url without credentials", "postgres://db.internal.example.com:5432/prod"},
	{"basic prose", "Basic income is a policy idea"},
	{"image at 2x avif", "banner@2x.avif"},
	{"idempotency key uuid", "idempotency_key: 8e03978e-40d5-4c1a-9f2b-1d2e3f4a5b6c"},
	{"page token", `"nextPageToken": "CiAKGjBpNDd2bXk0ZXJhNW9kMnE5dDF6"`},
	{"cache key", "cache_key: user:4412:profile:v2x9k3m2"},
	{"case number", "Case 2024-5567-8812 was closed"},
	{"voucher code", "Voucher code 4821-7730-1192"},
	{"parcel number", "FedEx 7749 1234 5678 delivered"},
	{"ticket shaped like an ssn", "Ticket 123-45-6788 reopened"},
	{"part number shaped like an ssn", "Part number 245-10-3310"},
	{"section number", "see Section 3.2.1.4 of the contract"},
	{"kernel version", "upgraded kernel to 5.15.0.91"},
	{"pinned package", "pip install foo==1.2.3.4"},
}

func TestNegatives(t *testing.T) {
	s := Default()
	for _, tc := range negatives {
		t.Run(tc.name, func(t *testing.T) {
			if fs := s.Scan([]byte(tc.text), nil, nil); len(fs) > 0 {
				t.Errorf("%q: got %s", tc.text, describe(tc.text, fs))
			}
		})
	}
}

func TestFieldNameIsContext(t *testing.T) {
	s := Default()
	cases := []struct{ key, value, class string }{
		{"ssn", "536228741", USSSN},
		{"password", "correct horse", GenericSecret},
		{"clientSecret", "abc123", GenericSecret},
		{"AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AWSSecretKey},
		{"phone", "451 5986", Phone},
		{"card_number", "060426070011", CreditCard},
	}
	for _, tc := range cases {
		fs := s.Scan([]byte(tc.value), []byte(tc.key), nil)
		if len(fs) != 1 || fs[0].Class != tc.class {
			t.Errorf("%s=%q: got %s, want %s", tc.key, tc.value, describe(tc.value, fs), tc.class)
		}
		// Without the field name the weak readings stay below the threshold.
		if tc.class != AWSSecretKey {
			if fs := s.Scan([]byte(tc.value), []byte("note"), nil); len(fs) != 0 {
				t.Errorf("note=%q: got %s, want nothing", tc.value, describe(tc.value, fs))
			}
		}
	}
}

func TestOverlapKeepsBestScore(t *testing.T) {
	// The SSN reading (with context) must beat the phone reading of the same digits.
	text := "His social security number is 846-15-5715"
	fs := Default().Scan([]byte(text), nil, nil)
	if len(fs) != 1 || fs[0].Class != USSSN {
		t.Fatalf("got %s", describe(text, fs))
	}
}

func TestScannerOptions(t *testing.T) {
	if _, err := NewScanner(Options{Threshold: 2}); err == nil {
		t.Error("threshold 2 accepted")
	}
	if _, err := NewScanner(Options{Disabled: []string{"NOPE"}}); err == nil {
		t.Error("unknown disabled class accepted")
	}
	s, err := NewScanner(Options{Disabled: []string{Email}})
	if err != nil {
		t.Fatal(err)
	}
	if fs := s.Scan([]byte("a@example.com"), nil, nil); len(fs) != 0 {
		t.Errorf("disabled class reported: %v", fs)
	}
}

func TestCustomDetectors(t *testing.T) {
	re, err := NewRegexDetector(RegexSpec{
		Class: "EMPLOYEE_ID", Pattern: `\bE-\d{6}\b`, Score: 0.4, Context: []string{"employee"},
		Validate: func(m string) bool { return m != "E-000000" },
	})
	if err != nil {
		t.Fatal(err)
	}
	dict, err := NewDictionaryDetector("PROJECT", []string{"Bluebird", "night owl"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewScanner(Options{Detectors: []Detector{re, dict}})
	if err != nil {
		t.Fatal(err)
	}
	text := "employee E-123456 on BLUEBIRD and Night  Owl; not bluebirds, not E-000000, not owl"
	got := describe(text, s.Scan([]byte(text), nil, nil))
	want := `[EMPLOYEE_ID "E-123456" PROJECT "BLUEBIRD" PROJECT "Night  Owl"]`
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	// Without the context word the regex score (0.4) stays under the threshold.
	if fs := s.Scan([]byte("id E-123456"), nil, nil); len(fs) != 0 {
		t.Errorf("got %s", describe("id E-123456", fs))
	}
	if _, err := NewRegexDetector(RegexSpec{Class: "X", Pattern: "a*"}); err == nil {
		t.Error("pattern matching the empty string accepted")
	}
	if _, err := NewRegexDetector(RegexSpec{Class: "X", Pattern: "("}); err == nil {
		t.Error("bad pattern accepted")
	}
	if _, err := NewDictionaryDetector("X", []string{" ; "}, 0); err == nil {
		t.Error("empty dictionary entry accepted")
	}
}

func TestScanDoesNotAllocate(t *testing.T) {
	s := Default()
	text := []byte(`Order 1234 for jane@example.com, card 4111 1111 1111 1111, phone +1 415-555-0132, from 10.0.0.7 at 2024-01-02`)
	dst := make([]Finding, 0, 16)
	allocs := testing.AllocsPerRun(100, func() { dst = s.Scan(text, nil, dst[:0]) })
	if allocs != 0 {
		t.Errorf("Scan allocates %.0f times per run", allocs)
	}
	if len(dst) != 4 {
		t.Errorf("got %s", describe(string(text), dst))
	}
}

func describe(text string, fs []Finding) string {
	var b strings.Builder
	b.WriteString("[")
	for i, f := range fs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(f.Class + " " + `"` + text[f.Start:f.End] + `"`)
	}
	b.WriteString("]")
	return b.String()
}
