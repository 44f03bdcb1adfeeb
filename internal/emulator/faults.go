package emulator

import (
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// FaultKind is a kind of injected fault.
type FaultKind int

// Fault kinds. The zero FaultKind means "no fault" (see Request.Fault).
const (
	// Latency sleeps Fault.Delay before the request is handled (the handler then runs),
	// giving up early if the client goes away.
	Latency FaultKind = iota + 1
	// Status answers Fault.Status (default 500) with a Cloudflare-shaped error body, code
	// 10001; the handler does not run.
	Status
	// RateLimit answers 429 with Retry-After (Fault.RetryAfter rounded up to whole seconds,
	// at least 1) and code 971, as the real limiter does; the handler does not run.
	RateLimit
	// Reset closes the connection with SO_LINGER 0, so the client sees a reset and no
	// response; the handler does not run.
	Reset
	// LostResponse runs the handler, so its change is committed, then discards the answer
	// and resets the connection: the client cannot know that the change happened.
	LostResponse
)

// String names the kind.
func (k FaultKind) String() string {
	switch k {
	case 0:
		return "none"
	case Latency:
		return "Latency"
	case Status:
		return "Status"
	case RateLimit:
		return "RateLimit"
	case Reset:
		return "Reset"
	case LostResponse:
		return "LostResponse"
	default:
		return "FaultKind(" + strconv.Itoa(int(k)) + ")"
	}
}

// Fault is one injected fault.
//
// A note on Go clients: net/http's Transport silently retries a request once when a reused
// keep-alive connection fails before any response byte arrives and the request is
// replayable (GET, HEAD, or one with an Idempotency-Key). A Reset with Times 1 on a GET may
// therefore be invisible to a Go client; use Times ≥ 2 or a transport without keep-alives
// to make the client see it. POST (create) is never retried that way.
type Fault struct {
	// Route is the pattern as in Request.Route, e.g. "POST /user/tokens"; "" means every
	// route (requests that match no route are never faulted).
	Route string
	// Kind is what happens.
	Kind FaultKind
	// Times is how many requests the fault hits; 0 means every one.
	Times int
	// Status is the status answered by a Status fault (default 500).
	Status int
	// RetryAfter is the Retry-After of a RateLimit fault (default 1s).
	RetryAfter time.Duration
	// Delay is the sleep of a Latency fault.
	Delay time.Duration
}

// fault is an added Fault and how many hits it has left.
type fault struct {
	Fault
	left int // < 0: unlimited
}

// AddFault adds a fault. Faults apply in the order added: every matching Latency fault
// delays the request, then the first matching fault of another kind decides its fate.
// Each fault that acts on a request counts one of its Times.
func (e *Emulator) AddFault(f Fault) {
	left := f.Times
	if left <= 0 {
		left = -1
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, &fault{Fault: f, left: left})
}

// Chaos configures random faults for soak tests.
type Chaos struct {
	// Rate is the probability (0..1) that a request gets a fault.
	Rate float64
	// Seed seeds the random choice of faults, so a soak run meets the same
	// kinds at the same rate again (which request gets which fault still
	// depends on how the run's requests interleave).
	Seed int64
	// Kinds are the kinds to pick from, uniformly; empty means all five. Status picks 500,
	// 502 or 503; RateLimit uses Retry-After 1s; Latency sleeps up to 100ms.
	Kinds []FaultKind
	// Routes limits chaos to these routes (as in Request.Route); empty means all.
	Routes []string
}

// chaosState is a Chaos with its random source (guarded by e.mu).
type chaosState struct {
	Chaos
	rnd *rand.Rand
}

// SetChaos turns on random faults; a zero Rate turns them off.
func (e *Emulator) SetChaos(c Chaos) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.Rate <= 0 {
		e.chaos = nil
		return
	}
	if len(c.Kinds) == 0 {
		c.Kinds = []FaultKind{Latency, Status, RateLimit, Reset, LostResponse}
	}
	seed := uint64(c.Seed)
	e.chaos = &chaosState{Chaos: c, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// ClearFaults removes every fault and turns chaos off.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
	e.chaos = nil
}

// pickFaults decides, under the lock, which faults hit a request on route: the total
// injected latency and at most one decisive fault.
func (e *Emulator) pickFaults(route string) (delay time.Duration, decisive *Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.faults {
		if f.left == 0 || (f.Route != "" && f.Route != route) {
			continue
		}
		if f.Kind == Latency {
			delay += f.Delay
		} else if decisive == nil {
			d := f.Fault
			decisive = &d
		} else {
			continue
		}
		if f.left > 0 {
			f.left--
		}
	}
	if c := e.chaos; c != nil && decisive == nil && chaosApplies(c.Routes, route) && c.rnd.Float64() < c.Rate {
		f := Fault{Kind: c.Kinds[c.rnd.IntN(len(c.Kinds))]}
		switch f.Kind {
		case Latency:
			delay += time.Duration(c.rnd.IntN(100)+1) * time.Millisecond
		case Status:
			f.Status = []int{500, 502, 503}[c.rnd.IntN(3)]
			decisive = &f
		case RateLimit:
			f.RetryAfter = time.Second
			decisive = &f
		default:
			decisive = &f
		}
	}
	return delay, decisive
}

func chaosApplies(routes []string, route string) bool {
	return len(routes) == 0 || slices.Contains(routes, route)
}

// injectFault applies the faults for request idx on route. It returns true when the
// request has been dealt with (answered, reset or abandoned) and must not be handled again.
func (e *Emulator) injectFault(w *statusWriter, r *http.Request, route string, idx int) bool {
	delay, f := e.pickFaults(route)
	if delay > 0 {
		e.setFault(idx, Latency)
		// ServeHTTP has read the body, so a client that hangs up cancels r.Context.
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true // nobody is listening; Status stays 0
		}
	}
	if f == nil {
		return false
	}
	e.setFault(idx, f.Kind)
	switch f.Kind {
	case Status:
		status := f.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		fail(status, codeInjectedFault, http.StatusText(status)).write(w)
		e.setStatus(idx, status)
	case RateLimit:
		ra := f.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		rp := fail(http.StatusTooManyRequests, codeRateLimited, messageRateLimited)
		rp.header = http.Header{"Retry-After": {strconv.Itoa(ceilSeconds(ra))}}
		rp.write(w)
		e.setStatus(idx, http.StatusTooManyRequests)
	case Reset:
		resetConnection(w.ResponseWriter)
	case LostResponse:
		// Run the real handler against a writer that keeps nothing: the change commits,
		// the answer is lost.
		e.mux.ServeHTTP(discardWriter{h: http.Header{}}, r)
		resetConnection(w.ResponseWriter)
	default:
		return false
	}
	return true
}

// discardWriter is a ResponseWriter that throws the response away.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return io.Discard.Write(b) }
func (d discardWriter) WriteHeader(int)             {}

// resetConnection hijacks the connection and closes it with SO_LINGER 0, which makes the
// kernel send RST instead of FIN: the client sees "connection reset by peer", as when a
// middlebox drops the connection. Where the connection cannot be hijacked (HTTP/2), the
// handler aborts with http.ErrAbortHandler, net/http's documented way to abort a response
// (it resets the stream); this is the one deliberate panic in the package.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
