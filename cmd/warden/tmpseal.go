package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"
)

type tmpSealer struct{ aead cipher.AEAD }

func newTmpSealer() *tmpSealer {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	a, _ := cipher.NewGCM(b)
	return &tmpSealer{a}
}
func (s *tmpSealer) Seal(purpose string, payload []byte, ttl time.Duration) (string, error) {
	n := make([]byte, s.aead.NonceSize())
	rand.Read(n)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(n, n, payload, []byte(purpose))), nil
}
func (s *tmpSealer) Open(purpose, token string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < s.aead.NonceSize() {
		return nil, errors.New("bad")
	}
	return s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(purpose))
}
