package token_test

import (
	"errors"
	"testing"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

func TestParseBrokerURL(t *testing.T) {
	t.Parallel()
	ok := []struct{ in, want string }{
		{"https://cf-broker.example.com", "https://cf-broker.example.com"},
		{" https://CF-Broker.Example.com/ ", "https://cf-broker.example.com"},
		{"https://cf-broker.example.com/tenant1/", "https://cf-broker.example.com/tenant1"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://[::1]:9000", "http://[::1]:9000"},
		{"http://LOCALHOST:8080", "http://localhost:8080"},
	}
	for _, tc := range ok {
		u, err := token.ParseBrokerURL(tc.in)
		if err != nil {
			t.Errorf("ParseBrokerURL(%q): %v", tc.in, err)
			continue
		}
		if got := u.String(); got != tc.want {
			t.Errorf("ParseBrokerURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	bad := []string{
		"", "cf-broker.example.com", "http://cf-broker.example.com", "http://10.0.0.1:8080",
		"ftp://cf-broker.example.com", "https://user:pw@cf-broker.example.com",
		"https://cf-broker.example.com/?x=1", "https://cf-broker.example.com/#f", "https://:443",
		"https://cf-broker.example.com:99999",
	}
	for _, in := range bad {
		_, err := token.ParseBrokerURL(in)
		var ie *token.InputError
		if !errors.As(err, &ie) || ie.Input != "broker-url" {
			t.Errorf("ParseBrokerURL(%q) = %v, want an InputError for broker-url", in, err)
		}
	}
}

func TestLooksLikeSecret(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"cfut_abc":      true,
		"prefix cfat_x": true,
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln":     true,
		"see eyJhbGciOiJSUzI1NiJ9.eyJ.x here":           true,
		"Ab1" + "xY2zW3vU4tS5rQ6pO7nM8lK9jI0hG1fE2dC3b": true, // 40 mixed token characters
		"repo:acme/site-deploy:environment:production":  false,
		"refs/heads/main":                          false,
		"15a5ebfa3fb5ddf10c4b4250e14496bec7f03a56": false, // a commit sha
		"eyJ but no dots":                          false,
		"":                                         false,
	} {
		if got := token.LooksLikeSecret(s); got != want {
			t.Errorf("LooksLikeSecret(%q) = %v, want %v", s, got, want)
		}
	}
}
