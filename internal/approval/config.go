package approval

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config is the approvals part of Warden's configuration:
//
//	approvals:
//	  hold: 30s
//	  expiry: 1h
//	  console_url: https://warden-admin.example.com
//	  webhooks: [{url: https://hooks.example.com/T000/B000, secret_env: WARDEN_WEBHOOK_SECRET}]
//	  rules: [{id: small-refunds, when: 'request.tool == "shop.refund_order" && double(request.args.amount) <= 5000.0', effect: approve}]
type Config struct {
	// Hold is how long a call that needs approval waits for a decision
	// before it is answered "pending approval <id>". Zero: DefaultHold.
	Hold time.Duration `yaml:"hold" json:"hold"`
	// Expiry is how long a request stays open and an approval stays
	// usable, from creation. Zero: DefaultExpiry.
	Expiry time.Duration `yaml:"expiry" json:"expiry"`
	// ConsoleURL is the admin listener's external base URL, for links in
	// notifications. Empty: notifications carry no link.
	ConsoleURL string `yaml:"console_url" json:"console_url"`
	// Webhooks are told about every request left for a human.
	Webhooks []WebhookConfig `yaml:"webhooks" json:"webhooks"`
	// Rules decide requests automatically, first match wins; a request
	// no rule matches waits for a human.
	Rules []RuleConfig `yaml:"rules" json:"rules"`
}

// WebhookConfig is one notification receiver.
type WebhookConfig struct {
	// URL receives a POST with a Slack-compatible JSON body.
	URL string `yaml:"url" json:"url"`
	// SecretEnv names the environment variable holding the HMAC key
	// that signs each body (X-Warden-Signature). Required: an unsigned
	// notification could be forged.
	SecretEnv string `yaml:"secret_env" json:"secret_env"`
}

// RuleConfig is one automated approval rule.
type RuleConfig struct {
	// ID names the rule; decisions record DecidedBy "rule:<id>".
	ID string `yaml:"id" json:"id"`
	// When is a CEL expression over request (id, principal, task, tool,
	// upstream, args, args_digest, policy_version, rules, reason,
	// approvers) that yields a bool.
	When string `yaml:"when" json:"when"`
	// Effect is "approve" or "deny".
	Effect string `yaml:"effect" json:"effect"`
}

// Defaults for zero durations.
const (
	DefaultHold   = 30 * time.Second
	DefaultExpiry = time.Hour
)

// WithDefaults returns c with zero durations filled in.
func (c Config) WithDefaults() Config {
	if c.Hold == 0 {
		c.Hold = DefaultHold
	}
	if c.Expiry == 0 {
		c.Expiry = DefaultExpiry
	}
	return c
}

// Validate checks everything that can be checked without the
// environment; rules are compiled by NewBroker.
func (c Config) Validate() error {
	var errs []error
	if c.Hold < 0 || c.Expiry < 0 {
		errs = append(errs, errors.New("approvals.hold and approvals.expiry must not be negative"))
	}
	if d := c.WithDefaults(); d.Hold > d.Expiry {
		errs = append(errs, fmt.Errorf("approvals.hold %s is longer than approvals.expiry %s", d.Hold, d.Expiry))
	}
	if c.ConsoleURL != "" {
		if u, err := url.Parse(c.ConsoleURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("approvals.console_url %q: need an http or https URL", c.ConsoleURL))
		}
	}
	for i, w := range c.Webhooks {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("approvals.webhooks[%d].url %q: need an http or https URL", i, w.URL))
		}
		if w.SecretEnv == "" {
			errs = append(errs, fmt.Errorf("approvals.webhooks[%d].secret_env: name the environment variable holding the signing key", i))
		}
	}
	ids := map[string]bool{}
	for i, r := range c.Rules {
		switch {
		case r.ID == "":
			errs = append(errs, fmt.Errorf("approvals.rules[%d]: id is required", i))
		case ids[r.ID]:
			errs = append(errs, fmt.Errorf("approvals.rules[%d]: id %q appears twice", i, r.ID))
		}
		ids[r.ID] = true
		if r.When == "" {
			errs = append(errs, fmt.Errorf("approvals.rules[%d] (%s): when is required", i, r.ID))
		}
		if r.Effect != "approve" && r.Effect != "deny" {
			errs = append(errs, fmt.Errorf("approvals.rules[%d] (%s): effect %q: use approve or deny", i, r.ID, r.Effect))
		}
	}
	return errors.Join(errs...)
}
