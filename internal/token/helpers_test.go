package token

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Account ids used across the tests: 32 lowercase hex.
const (
	acctA = "0123456789abcdef0123456789abcdef"
	acctB = "fedcba9876543210fedcba9876543210"
	acctC = "00000000000000000000000000000abc"
)

// Values shaped like Cloudflare API tokens (reference/cloudflare-api.md,
// Responses): a new user token (cfut_ + 40 characters + checksum) and an
// older 40-character one. They are made up.
const (
	newStyleToken = "cfut_" + "Zq8mV3kP1sT6wY9bN2cR5fH7jL0xA4dG8eU1iO3p" + "a1b2c3d4"
	oldStyleToken = "Q7wE9rT1yU3iO5pA7sD9fG1hJ3kL5zX7cV9bN1mQ"
)

// testSuffix is the random suffix a caller would draw: 12 hex characters.
const testSuffix = "0123456789ab"

func testRunContext() RunContext {
	return RunContext{Repository: "octo-org/infra", RunID: "9876543210", RunAttempt: "2", Job: "deploy", Suffix: testSuffix}
}

// defaultInputs is Inputs with every field at its default (the struct's
// default tags, which TestInputsMatchActionYAML holds equal to action.yml),
// plus the two required inputs.
func defaultInputs(tb testing.TB) Inputs {
	tb.Helper()
	var in Inputs
	v := reflect.ValueOf(&in).Elem()
	for i, s := range InputSpecs() {
		v.Field(i).SetString(s.Default)
	}
	in.APIToken = "parent-token-for-tests"
	in.AccountIDs = acctA
	return in
}

// wantInputError fails unless err is an *InputError for the given input
// whose Problem and Accepted are filled in. It returns the error.
func wantInputError(tb testing.TB, err error, input string) *InputError {
	tb.Helper()
	if err == nil {
		tb.Fatalf("err = nil, want an *InputError for input %q", input)
	}
	var ie *InputError
	if !errors.As(err, &ie) {
		tb.Fatalf("err = %v (%T), want an *InputError for input %q", err, err, input)
	}
	if ie.Input != input {
		tb.Errorf("InputError.Input = %q, want %q (error: %v)", ie.Input, input, err)
	}
	if strings.TrimSpace(ie.Problem) == "" {
		tb.Errorf("InputError.Problem is empty (error: %v)", err)
	}
	if strings.TrimSpace(ie.Accepted) == "" {
		tb.Errorf("InputError.Accepted is empty (error: %v)", err)
	}
	return ie
}

// mustNoError fails on any error.
func mustNoError(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("unexpected error: %v", err)
	}
}

// leaks reports whether text contains any 12-character piece of secret:
// a partial echo of a token is as bad as a whole one.
func leaks(text, secret string) bool {
	const window = 12
	for i := 0; i+window <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+window]) {
			return true
		}
	}
	return false
}

// MustLoadGroups reads the repository's testdata/permission_groups.json, written from the
// facts (ids, names, scopes) of reference/cloudflare/access-permission-groups.json
// plus a few filler groups.
func MustLoadGroups(tb testing.TB) []PermissionGroup {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "permission_groups.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var raw []struct {
		ID     string   `json:"id"`
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		tb.Fatal(err)
	}
	groups := make([]PermissionGroup, len(raw))
	for i, g := range raw {
		groups[i] = PermissionGroup{ID: g.ID, Name: g.Name, Scopes: g.Scopes}
	}
	return groups
}

// secretComparer lets cmp compare Requests, whose Secret hides its value.
var secretComparer = cmp.Comparer(func(a, b Secret) bool { return a.Reveal() == b.Reveal() })
