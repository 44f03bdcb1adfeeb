package token

import "fmt"

// redacted is what a Secret shows wherever it is formatted, logged or encoded.
const redacted = "[redacted]"

// Secret holds a token value (the parent api-token or a child token). It
// redacts itself in every fmt verb, in %#v and in JSON, so a secret that
// slips into a log line, an error or a summary shows as [redacted]. Only the
// masking call and the final output writer call Reveal.
//
// The value sits behind a pointer because fmt does not always ask the
// Secret: a Secret in an unexported struct field, or any Secret under a
// verb fmt refuses (%p), is printed by reflection, field by field, which
// would show a string field as it is; a pointer shows as an address.
type Secret struct{ value *string }

// NewSecret wraps a token value.
func NewSecret(value string) Secret { return Secret{value: &value} }

// Reveal returns the value itself. Call it only to mask the value or to hand
// it to its one destination (an Authorization header, a step output).
func (s Secret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return *s.value
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer, for %#v.
func (s Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that no verb (%d, %x, %q…) can reach
// the value by printing the struct's fields.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (used by encoders that
// prefer it, such as slog's text handler).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
