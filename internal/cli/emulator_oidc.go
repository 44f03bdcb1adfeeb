package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"

	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
)

// oidcOptions are emulator's flags for the local OIDC issuer.
type oidcOptions struct {
	enabled    bool
	listen     string
	claimsFile string
	claims     map[string]any
}

// oidcFlags registers --oidc, --oidc-listen, --claim and --claims.
func oidcFlags(fs *flag.FlagSet) *oidcOptions {
	o := &oidcOptions{claims: map[string]any{}}
	fs.BoolVar(&o.enabled, "oidc", false, "also serve a local OIDC issuer shaped like GitHub Actions', and print a job's variables")
	fs.StringVar(&o.listen, "oidc-listen", "127.0.0.1:8788", "address of the OIDC issuer (host:port; port 0 picks a free one)")
	fs.Func("claim", "a claim of the job's tokens, NAME=VALUE (a string, as GitHub's claims are); repeatable, e.g. --claim repository_id=123", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return errors.New("want NAME=VALUE")
		}
		o.claims[strings.TrimSpace(k)] = val
		return nil
	})
	fs.StringVar(&o.claimsFile, "claims", "", "JSON file of claims for the job's tokens (--claim entries win)")
	return o
}

// jobClaims merges the claims file and the --claim entries.
func (o *oidcOptions) jobClaims() (map[string]any, error) {
	claims := map[string]any{}
	if o.claimsFile != "" {
		b, err := readLimited(o.claimsFile, maxClaimsFile)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--claims: %v", err), "give a JSON object of claims"}
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&claims); err != nil || claims == nil { // null decodes to a nil map
			return nil, usageError{"--claims: the file is not a JSON object", `e.g. {"repository_id": "123", "ref": "refs/heads/main"}`}
		}
	}
	for k, v := range o.claims {
		claims[k] = v
	}
	return claims, nil
}

// serveIssuer starts the local OIDC issuer and registers one job with the
// claims; it returns the variables a job's environment would hold and a
// stop function.
func (o *oidcOptions) serveIssuer() (env [][2]string, stop func(), err error) {
	claims, err := o.jobClaims()
	if err != nil {
		return nil, nil, err
	}
	var iss *oidcissuer.Issuer
	_, stop, err = serve(o.listen, "oidc issuer", func(u string) (http.Handler, error) {
		var err error
		iss, err = oidcissuer.New(u)
		return iss, err
	})
	if err != nil {
		return nil, nil, err
	}
	job := iss.NewJob(claims)
	// The job's variables (reference/oidc.md §1): ACTIONS_ID_TOKEN_REQUEST_TOKEN
	// is the local issuer's own bearer and grants nothing elsewhere.
	env = [][2]string{{"CF_EMULATOR_OIDC_ISSUER", iss.URL()}}
	for _, kv := range job.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, [2]string{k, v})
	}
	return env, stop, nil
}
