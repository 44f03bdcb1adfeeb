package broker

import (
	"net/http"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
)

// ExchangeDeadline is the bound on one exchange, for the tests.
const ExchangeDeadline = exchangeDeadline

// AttemptTimeout is the client's bound on one attempt at a broker whose
// exchanges take at most deadline.
func AttemptTimeout(deadline time.Duration) time.Duration { return attemptTimeout(deadline) }

// SetExchangeDeadline bounds s's exchanges by d instead; call it before s
// serves.
func SetExchangeDeadline(s *Server, d time.Duration) { s.deadline = d }

// HandleForTest adds a route to s's endpoints; call it before s serves.
func HandleForTest(s *Server, pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// RetryPolicy is the policy c's calls retry by: c.Retry with DefaultRetry's
// fields where it leaves them zero.
func RetryPolicy(c *Client) retry.Policy { return c.retryPolicy() }
