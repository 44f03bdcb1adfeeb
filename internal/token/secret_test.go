package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverFormats(t *testing.T) {
	t.Parallel()
	const value = "cfut_SuperSecretValue0123456789abcdefghijKLMN"
	s := NewSecret(value)
	type holder struct {
		Name  string
		Token Secret
	}
	h := holder{Name: "child", Token: s}
	// fmt cannot call methods on an unexported field: it prints it by reflection.
	type private struct {
		name  string
		token Secret
	}
	hp := private{name: "child", token: s}
	wrapped := fmt.Errorf("create token: %w", fmt.Errorf("with %v: %w", s, errors.New("boom")))

	var outputs = map[string]string{}
	for _, verb := range []string{"%v", "%s", "%q", "%x", "%X", "%d", "%+v", "%#v", "%T %v", "%10.3s", "%-8q", "%t", "%p", "%U"} {
		outputs["Secret "+verb] = fmt.Sprintf(verb, s)
		outputs["*Secret "+verb] = fmt.Sprintf(verb, &s)
		outputs["struct "+verb] = fmt.Sprintf(verb, h)
		outputs["*struct "+verb] = fmt.Sprintf(verb, &h)
		outputs["slice "+verb] = fmt.Sprintf(verb, []Secret{s})
		outputs["map "+verb] = fmt.Sprintf(verb, map[string]Secret{"t": s})
		outputs["any "+verb] = fmt.Sprintf(verb, any(s))
		outputs["unexported field "+verb] = fmt.Sprintf(verb, hp)
		outputs["*unexported field "+verb] = fmt.Sprintf(verb, &hp)
	}
	outputs["Sprint"] = fmt.Sprint(s, h)
	outputs["Sprintln"] = fmt.Sprintln(s, &h)
	outputs["String"] = s.String()
	outputs["GoString"] = s.GoString()
	outputs["error"] = wrapped.Error()
	outputs["unwrapped"] = errors.Unwrap(wrapped).Error()
	for name, v := range map[string]any{"Secret": s, "struct": h, "*struct": &h, "map": map[string]any{"t": s}} {
		b, err := json.Marshal(v)
		mustNoError(t, err)
		outputs["json "+name] = string(b)
		b, err = json.MarshalIndent(v, "", " ")
		mustNoError(t, err)
		outputs["json indent "+name] = string(b)
	}
	txt, err := s.MarshalText()
	mustNoError(t, err)
	outputs["MarshalText"] = string(txt)
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("minted", "token", s, "holder", h)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("minted", "token", s, "holder", h)
	outputs["slog"] = logs.String()

	for name, out := range outputs {
		if strings.Contains(out, value) || leaks(out, value) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
	}
	for _, name := range []string{"Secret %v", "Secret %#v", "struct %+v", "json Secret", "error", "slog"} {
		if !strings.Contains(outputs[name], "[redacted]") {
			t.Errorf("%s = %q, want it to say [redacted]", name, outputs[name])
		}
	}
	if got := s.Reveal(); got != value {
		t.Errorf("Reveal() = %q, want the value", got)
	}
	if s.IsZero() {
		t.Error("IsZero() = true for a set secret")
	}
	if !(Secret{}).IsZero() || !NewSecret("").IsZero() {
		t.Error("IsZero() = false for an empty secret")
	}
}

// TestRequestNeverFormatsItsToken: a validated request, printed whole as a
// debug line might, does not show the parent token.
func TestRequestNeverFormatsItsToken(t *testing.T) {
	t.Parallel()
	in := defaultInputs(t)
	in.APIToken = oldStyleToken
	r, err := in.Parse(testRunContext())
	mustNoError(t, err)
	b, err := json.Marshal(r)
	mustNoError(t, err)
	for _, out := range []string{fmt.Sprintf("%v", r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r), string(b)} {
		if leaks(out, oldStyleToken) {
			t.Errorf("Request formats the parent token: %s", out)
		}
	}
	if r.APIToken.Reveal() != oldStyleToken {
		t.Errorf("APIToken.Reveal() = %q, want the token", r.APIToken.Reveal())
	}
}
