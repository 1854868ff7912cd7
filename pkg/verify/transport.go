package verify

import (
	"net/http"
	"strings"
)

// MetaKey is the _meta key under which Warden places the credential in
// every request it forwards.
const MetaKey = "io.wardenmcp/credential"

// FromMeta returns the credential carried in a request's _meta.
func FromMeta(meta map[string]any) (string, bool) {
	token, ok := meta[MetaKey].(string)
	if !ok || token == "" {
		return "", false
	}
	return token, true
}

// FromRequest returns the bearer credential of an HTTP request. A request
// with more than one Authorization header yields nothing rather than a guess.
func FromRequest(r *http.Request) (string, bool) {
	if r == nil {
		return "", false
	}
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}
