package broker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// A broker's token names end in a suffix of nonceHex random hex digits
// and tagHex hex digits of an HMAC over the rest of the name and the
// nonce. The broker is stateless and runs as many replicas, yet must
// delete only tokens it made (revoke, sweep): any replica holding the same
// parent recomputes the MAC and so tells its own tokens by their name
// alone. Tokens that the action or the CLI made with the same parent carry
// a random suffix without a valid MAC, those of a broker with another
// parent a MAC under another key.
const (
	nonceHex  = 12 // 6 random bytes: the name stays unique for lost-create recovery
	tagHex    = 16 // 8 bytes of HMAC-SHA256: forging one by chance is a 2^-64 event
	suffixHex = nonceHex + tagHex
)

// nameKeyLabel separates the name MAC key from any other use of the parent's
// value: the key is HMAC-SHA256(parent, label), so the MAC reveals nothing
// about the parent and changing the label retires every name.
const nameKeyLabel = "cf-scoped-token broker: token name MAC key, v1"

// namer makes and recognises the broker's token names.
type namer struct{ key []byte }

func newNamer(parent token.Secret) *namer {
	m := hmac.New(sha256.New, []byte(parent.Reveal()))
	m.Write([]byte(nameKeyLabel))
	return &namer{key: m.Sum(nil)}
}

// name makes a token name: token.DefaultName of the run (so at most
// token.MaxNameLength characters, shortened the same way), whose random
// suffix is a fresh nonce and the MAC.
func (n *namer) name(rc token.RunContext, rnd io.Reader) (string, error) {
	var b [nonceHex / 2]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("draw a random name suffix: %w", err)
	}
	nonce := hex.EncodeToString(b[:])
	placeholder := strings.Repeat("0", suffixHex)
	rc.Suffix = placeholder
	rest := strings.TrimSuffix(token.DefaultName(rc), placeholder)
	return rest + nonce + n.tag(rest, nonce), nil
}

// owns reports whether name is one this namer made: the tool's prefix, a
// space, then the suffix whose MAC checks out over everything before it.
func (n *namer) owns(name string) bool {
	if len(name) < len(token.NamePrefix)+suffixHex || !token.IsOwnName(name) {
		return false
	}
	rest, suffix := name[:len(name)-suffixHex], name[len(name)-suffixHex:]
	if !strings.HasSuffix(rest, " ") || !isLowerHex(suffix) {
		return false
	}
	nonce, tag := suffix[:nonceHex], suffix[nonceHex:]
	return hmac.Equal([]byte(tag), []byte(n.tag(rest, nonce)))
}

func (n *namer) tag(rest, nonce string) string {
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte(rest))
	m.Write([]byte{0})
	m.Write([]byte(nonce))
	return hex.EncodeToString(m.Sum(nil)[:tagHex/2])
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// OwnsName reports whether a token name was made by a broker holding the
// parent token parent, by the check revoke and sweep make before they
// delete (a Server uses its own namer, keyed once). It is for tests outside
// this package that look at a broker's tokens.
func OwnsName(parent token.Secret, name string) bool { return newNamer(parent).owns(name) }
