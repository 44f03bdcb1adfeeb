package ghactiontest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// AssertNoLeaks fails tb for every place a secret shows in either stage (see
// Stage.AssertNoLeaks). The messages name each secret by its position in secrets, never by value:
// test logs are CI logs too.
func (j *Job) AssertNoLeaks(tb testing.TB, secrets ...string) {
	tb.Helper()
	if j.Main != nil {
		j.Main.assertNoLeaks(tb, nil, secrets)
	}
	if j.Post != nil {
		// The runner's masker is job-wide: main's masks already cover post's output (§4).
		var inherited []string
		if j.Main != nil {
			inherited = j.Main.Masks
		}
		j.Post.assertNoLeaks(tb, inherited, secrets)
	}
}

// AssertNoLeaks fails tb if a secret shows anywhere but where it must (SPEC "The token never
// appears in a log"):
//   - in the raw stdout or stderr, a secret may appear only as the data of an ::add-mask::
//     command. Any other appearance fails, whether or not a mask came first, and is reported as
//     "before its ::add-mask::" when none had. Commands count after unescaping (§4), so
//     "::error::a%0Ab" leaks the secret "a\nb". "Masked" means the masks registered so far,
//     earlier stages' included, would hide the whole secret;
//   - it must not appear at all in the step summary, in any command other than ::add-mask::
//     (::debug:: included), or in the masked Log.
//
// A stage the simulation could not run (Err != nil) fails too, because it proves nothing.
func (s *Stage) AssertNoLeaks(tb testing.TB, secrets ...string) {
	tb.Helper()
	s.assertNoLeaks(tb, nil, secrets)
}

// assertNoLeaks is AssertNoLeaks with the masks registered earlier in the job.
func (s *Stage) assertNoLeaks(tb testing.TB, inherited, secrets []string) {
	tb.Helper()
	if s.Err != nil {
		tb.Errorf("%s: stage did not run, so it cannot be checked for leaks: %v", s.Phase, s.Err)
		return
	}
	for i, secret := range secrets {
		n := i + 1
		if secret == "" {
			tb.Errorf("AssertNoLeaks: secret #%d is empty", n)
			continue
		}
		redact := func(t string) string { return redactSecrets(t, secrets) }
		masks := slices.Clone(inherited)
		line := map[string]int{}
		for _, l := range s.Lines {
			line[l.Stream]++
			cmd, isCmd := ParseCommand(l.Text)
			if isCmd && cmd.Name == "add-mask" {
				masks = append(masks, maskValues(cmd.Data)...)
				continue
			}
			if !strings.Contains(l.Text, secret) && !(isCmd && commandHolds(cmd, secret)) {
				continue
			}
			when := "outside ::add-mask::"
			if maskLine(secret, masks) != "***" {
				when = "before its ::add-mask::"
			}
			tb.Errorf("%s: secret #%d appears in %s line %d, %s: %s", s.Phase, n, l.Stream, line[l.Stream], when, redact(l.Text))
		}
		// A secret with a line break can only leak raw across lines: add-mask data escapes them.
		if strings.ContainsAny(secret, "\r\n") {
			for stream, raw := range map[string]string{"stdout": s.Stdout, "stderr": s.Stderr} {
				if strings.Contains(raw, secret) {
					tb.Errorf("%s: secret #%d appears raw across lines of %s", s.Phase, n, stream)
				}
			}
		}
		if strings.Contains(s.Summary, secret) {
			tb.Errorf("%s: secret #%d appears in the step summary", s.Phase, n)
		}
		if strings.Contains(s.Log, secret) {
			tb.Errorf("%s: secret #%d appears in the masked log", s.Phase, n)
		}
	}
}

// commandHolds reports whether the secret is in a command's unescaped data or properties.
func commandHolds(c Command, secret string) bool {
	if strings.Contains(c.Data, secret) {
		return true
	}
	for k, v := range c.Props {
		if strings.Contains(k, secret) || strings.Contains(v, secret) {
			return true
		}
	}
	return false
}

// redactSecrets replaces each secret in text, raw or escaped as command data or property (§4),
// with <secret #n>, so a failure message can show the offending line.
func redactSecrets(text string, secrets []string) string {
	data := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	prop := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
	for i, s := range secrets {
		if s == "" {
			continue
		}
		tag := fmt.Sprintf("<secret #%d>", i+1)
		for _, form := range []string{s, data.Replace(s), prop.Replace(s)} {
			text = strings.ReplaceAll(text, form, tag)
		}
	}
	return text
}
