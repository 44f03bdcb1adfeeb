package oidcissuer

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"maps"
	"net/http"
	"strings"
)

// Job is what a CI job that may ask for ID tokens is given (reference/oidc.md §1).
type Job struct {
	// RequestURL is the job's ACTIONS_ID_TOKEN_REQUEST_URL. Like GitHub's, it already has a
	// query (api-version=2.0), so a client must add audience to it, not replace it.
	RequestURL string
	// RequestToken is the job's ACTIONS_ID_TOKEN_REQUEST_TOKEN, the bearer credential of the
	// request.
	RequestToken string
}

// Environ returns the job's two variables as NAME=value lines, as a runner sets them.
func (j Job) Environ() []string {
	return []string{
		"ACTIONS_ID_TOKEN_REQUEST_URL=" + j.RequestURL,
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + j.RequestToken,
	}
}

// job is a registered Job.
type job struct {
	plan   string
	bearer string
	claims map[string]any
}

// NewJob registers a job whose tokens carry claims over the defaults, as Sign's do (a nil
// value removes a claim; a claim set here, aud included, wins over the request's audience).
// The job's tokens are signed RS256 with the current key, as GitHub's are.
func (iss *Issuer) NewJob(claims map[string]any) Job {
	plan, id := newUUID(), newUUID()
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	bearer := base64.RawURLEncoding.EncodeToString(b[:])
	iss.mu.Lock()
	iss.jobs[id] = &job{plan: plan, bearer: bearer, claims: maps.Clone(claims)}
	iss.mu.Unlock()
	path := strings.NewReplacer("{plan}", plan, "{job}", id).Replace(idRequestPath)
	return Job{RequestURL: iss.url + path + "?api-version=2.0", RequestToken: bearer}
}

// serveToken is the ID-token endpoint (reference/oidc.md §1): GET with the job's bearer token
// and an optional audience answers 200 {"value": "<jwt>"}; errors answer {"message": "…"}.
func (iss *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	iss.mu.Lock()
	j := iss.jobs[r.PathValue("job")]
	iss.mu.Unlock()
	if j == nil || j.plan != r.PathValue("plan") {
		writeMessage(w, http.StatusNotFound, "no such job")
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(j.bearer)) != 1 {
		writeMessage(w, http.StatusUnauthorized, "the request's bearer token is missing or is not this job's")
		return
	}
	q := r.URL.Query()
	// A client that replaced the query instead of adding audience to it drops api-version;
	// answering that with an error makes the mistake visible (reference/oidc.md §1).
	if q.Get("api-version") == "" {
		writeMessage(w, http.StatusBadRequest, "no api-version was supplied for the GET request")
		return
	}
	raw, err := iss.sign(iss.claims(j.claims, q.Get("audience")), signConfig{alg: RS256})
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Value string `json:"value"`
	}{raw})
}
