package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

func (s *Server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TokenPath, s.serveToken)
	mux.HandleFunc("POST "+RevokePath, s.serveRevoke)
	mux.HandleFunc("GET "+MetadataPath, s.serveMetadata)
	// RFC 8414 §3: for an issuer with a path, the well-known part goes
	// between the host and that path — the path of the public URL being
	// served, which a reload may change: serveMetadata checks it.
	mux.HandleFunc("GET "+MetadataPath+"/", s.serveMetadata)
	mux.HandleFunc("GET "+HealthPath, s.serveHealth)
	mux.HandleFunc("GET "+ReadyPath, s.serveReady)
	for _, p := range []string{TokenPath, RevokePath} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: InvalidRequest, desc: "use POST with a form body"})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { notFound(w) })
	s.mux = mux
}

func notFound(w http.ResponseWriter) {
	writeError(w, &apiError{status: http.StatusNotFound, code: InvalidRequest, desc: "no such endpoint; see " + MetadataPath})
}

// ServeHTTP serves the broker's endpoints. A panic is answered 500 and
// logged by its type alone: its value could hold anything the handler had.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v) // net/http's own signal to drop the connection
			}
			// The method is a token net/http checked; the path is the
			// caller's text, percent-decoded: quoted.
			s.logf("internal error serving %s %q: a panic (%T)", r.Method, r.URL.Path, v)
			writeError(w, &apiError{status: http.StatusInternalServerError, code: ServerError, desc: "internal error"})
		}
	}()
	s.mux.ServeHTTP(w, r)
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if ok, why := s.Ready(); !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": why})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// Metadata is the broker's RFC 8414 authorization server metadata.
type Metadata struct {
	Issuer                                 string   `json:"issuer"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
}

func metadata(st *state) Metadata {
	return Metadata{
		Issuer:                                 st.publicURL,
		TokenEndpoint:                          st.publicURL + TokenPath,
		RevocationEndpoint:                     st.publicURL + RevokePath,
		GrantTypesSupported:                    []string{GrantTypeTokenExchange},
		ResponseTypesSupported:                 []string{}, // no authorization endpoint (reference/oidc.md §5)
		TokenEndpointAuthMethodsSupported:      []string{"none"},
		RevocationEndpointAuthMethodsSupported: []string{"none"},
	}
}

// serveMetadata answers at MetadataPath, and at MetadataPath followed by
// the path of the public URL.
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	if p := r.URL.EscapedPath(); p != MetadataPath && (st.metadataPath == "" || p != MetadataPath+st.metadataPath) {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, metadata(st))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, code: ServerError, desc: "internal error"})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// caller is the address the request came from: the direct peer, or, when
// the peer is a trusted proxy, the first address of X-Forwarded-For from
// the right that is not a trusted proxy (the right end is what the nearest
// proxy saw; anything to its left the client may have written itself).
func (s *Server) caller(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	peer := ap.Addr().Unmap()
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a hop no proxy writes: trust nothing to its left
		}
		addr = a.Unmap()
		if !s.trusted(addr) {
			break
		}
	}
	return addr
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// readForm reads a form-encoded body of at most MaxFormSize bytes. The
// parameters must be in the body, each at most once (RFC 6749 §3.2): a
// subject token in the URL would land in access logs.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *apiError) {
	if r.URL.RawQuery != "" {
		return nil, badRequest(InvalidRequest, "parameters go in the form body, not in the URL")
	}
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	if ct != "application/x-www-form-urlencoded" {
		return nil, badRequest(InvalidRequest, "the body must be application/x-www-form-urlencoded")
	}
	buf, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFormSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, badRequest(InvalidRequest, "the form body is larger than %d KiB", MaxFormSize>>10)
		}
		return nil, badRequest(InvalidRequest, "the form body could not be read")
	}
	form, err := url.ParseQuery(string(buf))
	if err != nil {
		return nil, badRequest(InvalidRequest, "the form body is not form-encoded")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, badRequest(InvalidRequest, "parameter %s is given %d times", quoteName(k), len(v))
		}
	}
	return form, nil
}

// quoteName quotes a parameter name from the request for a description.
func quoteName(k string) string {
	return fmt.Sprintf("%q", escape(k, 40))
}
