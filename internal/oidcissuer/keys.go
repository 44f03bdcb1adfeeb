package oidcissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"slices"
)

// Alg is a JWS signature algorithm this issuer signs with.
type Alg string

// The algorithms of the issuer's keys: GitHub signs with RS256 (reference/oidc.md §2); ES256 is
// here so that a verifier's second accepted algorithm can be tested too.
const (
	RS256 Alg = "RS256"
	ES256 Alg = "ES256"
)

// jwk is one published key (reference/oidc.md §2: kty, alg, use, kid, and n/e or crv/x/y).
type jwk struct {
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// jwkSet is the JWKS document.
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// signingKey is a private key with its kid and its public JWK.
type signingKey struct {
	alg  Alg
	kid  string
	priv crypto.Signer // *rsa.PrivateKey or *ecdsa.PrivateKey
	jwk  jwk
}

// newSigningKey generates a key for alg with a UUID-like kid, as GitHub's current kids look
// (reference/oidc.md §2).
func newSigningKey(alg Alg) (*signingKey, error) {
	kid := newUUID()
	b64 := base64.RawURLEncoding.EncodeToString
	switch alg {
	case RS256:
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("oidc issuer: generate RSA key: %w", err)
		}
		e := big.NewInt(int64(priv.E)).Bytes()
		return &signingKey{alg: alg, kid: kid, priv: priv, jwk: jwk{
			Kty: "RSA", Alg: string(alg), Use: "sig", Kid: kid, N: b64(priv.N.Bytes()), E: b64(e),
		}}, nil
	case ES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("oidc issuer: generate P-256 key: %w", err)
		}
		// Bytes is the uncompressed point 0x04 || X || Y, each coordinate 32 bytes: exactly
		// the fixed-width x and y a JWK wants (RFC 7518 §6.2.1.2).
		pt, err := priv.PublicKey.Bytes()
		if err != nil {
			return nil, fmt.Errorf("oidc issuer: encode P-256 key: %w", err)
		}
		return &signingKey{alg: alg, kid: kid, priv: priv, jwk: jwk{
			Kty: "EC", Alg: string(alg), Use: "sig", Kid: kid, Crv: "P-256", X: b64(pt[1:33]), Y: b64(pt[33:65]),
		}}, nil
	default:
		return nil, fmt.Errorf("oidc issuer: algorithm %q is not RS256 or ES256", alg)
	}
}

// Rotate adds a new key for alg, which signs every token of that algorithm from now on; the
// keys it replaces stay published until retired. It returns the new key's kid.
func (iss *Issuer) Rotate(alg Alg) (string, error) {
	k, err := newSigningKey(alg)
	if err != nil {
		return "", err
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.keys = append(iss.keys, k)
	iss.current[alg] = k
	return k.kid, nil
}

// Retire removes the key kid from the JWKS. If it was signing, the newest remaining key of its
// algorithm signs instead; with none left, signing with that algorithm fails.
func (iss *Issuer) Retire(kid string) error {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	i := slices.IndexFunc(iss.keys, func(k *signingKey) bool { return k.kid == kid })
	if i < 0 {
		return fmt.Errorf("oidc issuer: no published key %q", kid)
	}
	k := iss.keys[i]
	iss.keys = slices.Delete(iss.keys, i, i+1)
	if iss.current[k.alg] == k {
		delete(iss.current, k.alg)
		for j := len(iss.keys) - 1; j >= 0; j-- {
			if iss.keys[j].alg == k.alg {
				iss.current[k.alg] = iss.keys[j]
				break
			}
		}
	}
	return nil
}

// KeyID returns the kid of the key that signs alg tokens now, "" if none does.
func (iss *Issuer) KeyID(alg Alg) string {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if k := iss.current[alg]; k != nil {
		return k.kid
	}
	return ""
}

// KeyIDs returns the kids of every published key, in the order they were added.
func (iss *Issuer) KeyIDs() []string {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	out := make([]string, len(iss.keys))
	for i, k := range iss.keys {
		out[i] = k.kid
	}
	return out
}

// currentKey returns the key that signs alg now.
func (iss *Issuer) currentKey(alg Alg) (*signingKey, error) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	k := iss.current[alg]
	if k == nil {
		return nil, fmt.Errorf("oidc issuer: sign %s: %w", alg, errNoKey)
	}
	return k, nil
}

// foreignKey returns a key of alg that is never published, made on first use. Its kid is
// replaced by the caller; generating it lazily keeps New as cheap as two keys.
func (iss *Issuer) foreignKey(alg Alg) (*signingKey, error) {
	iss.mu.Lock()
	k := iss.foreign[alg]
	iss.mu.Unlock()
	if k != nil {
		return k, nil
	}
	k, err := newSigningKey(alg)
	if err != nil {
		return nil, err
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if prev := iss.foreign[alg]; prev != nil {
		return prev, nil // another caller made one meanwhile
	}
	iss.foreign[alg] = k
	return k, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
