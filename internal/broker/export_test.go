package broker

import "time"

// ExchangeDeadline is the bound on one exchange, for the tests.
const ExchangeDeadline = exchangeDeadline

// AttemptTimeout is the client's bound on one attempt at a broker whose
// exchanges take at most deadline.
func AttemptTimeout(deadline time.Duration) time.Duration { return attemptTimeout(deadline) }

// SetExchangeDeadline bounds s's exchanges by d instead; call it before s
// serves.
func SetExchangeDeadline(s *Server, d time.Duration) { s.deadline = d }
