package emulator

import (
	"encoding/json"
	"net/http"
	"time"
)

// Cloudflare error codes the emulator answers with. Those marked "reference" are facts from
// reference/cloudflare-api.md ("Errors and limits", "Create body"); the others are the
// emulator's own choice where the reference documents only the HTTP status, and are listed
// here so that tests and clients can rely on them.
const (
	codeInvalidAPIToken   = 1000  // reference: verify with an invalid or account-owned token
	codeBadRequest        = 1001  // reference for reused policies and the common permission check; emulator's choice for every other body or query validation error
	codeNotFound          = 1003  // emulator's choice: unknown token id or Access object (404)
	codeQuotaExceeded     = 1005  // emulator's choice: token quota reached (400)
	codeInvalidHeaders    = 6003  // reference: malformed or missing Authorization header
	codeMalformedJSON     = 6007  // Cloudflare's "Malformed JSON in request body"
	codeBadAuthFormat     = 6111  // reference: in the 6003 error_chain
	codeNoRoute           = 7000  // Cloudflare's "No route for that URI"
	codeBadIdentifier     = 7003  // Cloudflare's "Could not route to …, perhaps your object identifier is invalid?"
	codeRateLimited       = 971   // reference: rate limit
	codeInvalidAccess     = 9109  // reference: invalid token on user endpoints; refused location
	codeAuthError         = 10000 // reference: token lacks the permission; invalid token on account endpoints
	codeInjectedFault     = 10001 // emulator's choice: the body of an injected Status fault
	messageValidToken     = "This API Token is valid and active"
	messageRateLimited    = "Please wait and consider throttling your request speed"
	messageAuthError      = "Authentication error"
	messageInvalidAccess  = "Invalid access token"
	messageUnauthorized   = "Unauthorized to access requested resource"
	messageInvalidToken   = "Invalid API Token"
	messageNoRoute        = "No route for that URI"
	messageNotFound       = "Not found"
	messageMalformedJSON  = "Malformed JSON in request body"
	messageInvalidHeaders = "Invalid request headers"
	messageBadAuthFormat  = "Invalid format for Authorization header"
)

// apiError is one entry of the envelope's errors array. Cloudflare nests the cause of some
// errors in error_chain (reference/cloudflare-api.md, "Errors and limits": 6003 → 6111).
type apiError struct {
	Code       int        `json:"code"`
	Message    string     `json:"message"`
	ErrorChain []apiError `json:"error_chain,omitempty"`
}

// apiMessage is one entry of the envelope's messages array.
type apiMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// resultInfo is added to list responses (reference/cloudflare-api.md, "Responses").
type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
}

// envelope is the v4 response wrapper. errors and messages are always arrays and result is
// null on failure (reference/cloudflare-api.md, "Responses"), so neither has omitempty.
type envelope struct {
	Success    bool         `json:"success"`
	Errors     []apiError   `json:"errors"`
	Messages   []apiMessage `json:"messages"`
	Result     any          `json:"result"`
	ResultInfo *resultInfo  `json:"result_info,omitempty"`
}

// reply is what an API handler computes while holding the store lock; it is written to the
// connection only after the lock is released, so a slow client cannot stall the emulator.
type reply struct {
	status int
	header http.Header
	body   envelope
}

// succeed is a successful reply carrying result.
func succeed(result any) reply {
	return reply{status: http.StatusOK, body: envelope{
		Success: true, Errors: []apiError{}, Messages: []apiMessage{}, Result: result,
	}}
}

// okList is a successful list reply with result_info.
func okList(result any, info resultInfo) reply {
	r := succeed(result)
	r.body.ResultInfo = &info
	return r
}

// fail is a failed reply: success false, result null, one error.
func fail(status, code int, message string) reply {
	return failWith(status, apiError{Code: code, Message: message})
}

// failWith is a failed reply carrying the given errors.
func failWith(status int, errs ...apiError) reply {
	return reply{status: status, body: envelope{
		Success: false, Errors: errs, Messages: []apiMessage{}, Result: nil,
	}}
}

// write sends the reply as JSON.
func (rp reply) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range rp.header {
		h[k] = v
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(rp.status)
	// An encoding error here can only be a broken connection; there is nobody left to tell.
	_ = json.NewEncoder(w).Encode(rp.body)
}

// formatTime renders a time the way the API does: RFC 3339, whole seconds, UTC
// (reference/cloudflare-api.md, "Create body": dates).
func formatTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}
