package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcverify"
	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Defaults of the broker command (SPEC, "The broker"; deploy/ runs it with
// --listen=:8080).
const (
	brokerListen  = "127.0.0.1:8080"
	brokerRate    = "30/m"
	brokerBurst   = 10
	brokerDrain   = 8 * time.Second // Cloud Run kills 10 s after SIGTERM; the manifests assume 8
	brokerStartup = time.Minute     // verifying the parent and loading the catalogue
	// maxTokenFile bounds the parent token file: a token is about 50 bytes.
	maxTokenFile = 4 << 10
)

const brokerSynopsis = `cf-scoped-token broker --policy FILE [--listen ADDR] [--audience AUD] [--api-url URL]
           [--api-token-file PATH] [--rate-limit 30/m] [--burst 10] [--sweep-every 1h]
           [--public-url URL] [--trusted-proxies CIDRS] [--drain 8s]`

// brokerFlags are the broker command's settings, as given.
type brokerFlags struct {
	policy, listen, audience, apiURL, tokenFile, rateLimit, publicURL, proxies string
	burst                                                                      int
	sweepEvery, drain                                                          time.Duration
}

func runBroker(ctx context.Context, args []string, getenv func(string) string, p *printer) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	var f brokerFlags
	fs.StringVar(&f.policy, "policy", "", "the policy file (YAML); SIGHUP reloads it")
	fs.StringVar(&f.listen, "listen", brokerListen, "address to serve on (host:port; :8080 for every interface)")
	fs.StringVar(&f.audience, "audience", "", "the aud every OIDC token must carry (default: the policy's audience)")
	api, _ := inputSpec("api-url")
	fs.StringVar(&f.apiURL, "api-url", api.Default, "Cloudflare API base URL")
	fs.StringVar(&f.tokenFile, "api-token-file", "", "file holding the parent token (else "+EnvName("api-token")+")")
	fs.StringVar(&f.rateLimit, "rate-limit", brokerRate, "exchanges per identity: N/s, N/m or N/h")
	fs.IntVar(&f.burst, "burst", brokerBurst, "exchanges an identity may make at once")
	fs.DurationVar(&f.sweepEvery, "sweep-every", broker.DefaultSweepEvery, "how often to delete the broker's expired tokens (0: never)")
	fs.StringVar(&f.publicURL, "public-url", "", "the broker's own URL, issuer of its metadata (default: the audience)")
	fs.StringVar(&f.proxies, "trusted-proxies", "", "CIDRs of load balancers whose X-Forwarded-For is believed (default: none)")
	fs.DurationVar(&f.drain, "drain", brokerDrain, "on SIGTERM, how long in-flight exchanges may take to finish")
	var refused string
	fs.StringVar(&refused, "api-token", "", "refused: the parent token is read from "+EnvName("api-token")+" or --api-token-file, never a flag")
	if err := parseFlags(fs, args, p, brokerSynopsis); err != nil {
		return err
	}
	if err := checkNoTokenFlag(fs); err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	parent, err := readParent(f.tokenFile, getenv)
	if err != nil {
		return err
	}
	pol, err := loadPolicyFile(f.policy, p)
	if err != nil {
		return err
	}
	apiURL, err := token.ParseAPIURL(f.apiURL)
	if err != nil {
		return flagFault("api-url", err)
	}

	cfg.Policy, cfg.Parent = pol, parent
	cfg.API = newClient(apiURL.String(), parent, nil, func(format string, args ...any) { p.logf("broker: cloudflare: "+format, args...) })
	cfg.OIDC = oidcverify.Config{HTTP: &http.Client{Timeout: 10 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	cfg.Audit = p.out
	cfg.Logf = func(format string, args ...any) { p.logf("broker: "+format, args...) }
	srv, err := broker.New(cfg)
	if err != nil {
		return usageError{strings.TrimPrefix(err.Error(), "broker: "), "set audience in the policy file, or --audience, to the broker-url the jobs use"}
	}
	sctx, cancel := context.WithTimeout(ctx, brokerStartup)
	err = srv.Start(sctx)
	cancel()
	if err != nil {
		return startFault(f.policy, err, p)
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return usageError{fmt.Sprintf("--listen %s: %v", f.listen, err), "pick a free address, e.g. --listen 127.0.0.1:8080"}
	}
	p.logf("broker: listening on http://%s; policy %s (%d rules), audience %s, public URL %s",
		ln.Addr(), f.policy, len(pol.Rules), srv.Audience(), srv.PublicURL())
	return serveBroker(ctx, srv, ln, f, p)
}

// config checks the flags that need no file and no network.
func (f *brokerFlags) config() (broker.Config, error) {
	var cfg broker.Config
	if f.policy == "" {
		return cfg, usageError{"--policy is required", "give the policy file: cf-scoped-token broker --policy policy.yaml"}
	}
	r, err := parseRate(f.rateLimit)
	if err != nil {
		return cfg, usageError{fmt.Sprintf("--rate-limit %q: %v", f.rateLimit, err), "use N/s, N/m or N/h, e.g. --rate-limit 30/m"}
	}
	if f.burst < 1 || f.burst > 10_000 {
		return cfg, usageError{fmt.Sprintf("--burst %d is not between 1 and 10000", f.burst), "e.g. --burst 10"}
	}
	if f.sweepEvery < 0 || f.sweepEvery > 0 && f.sweepEvery < time.Minute {
		return cfg, usageError{fmt.Sprintf("--sweep-every %s is shorter than a minute", f.sweepEvery), "e.g. --sweep-every 1h, or 0 for never"}
	}
	if f.drain < time.Second || f.drain > 10*time.Minute {
		return cfg, usageError{fmt.Sprintf("--drain %s is not between 1s and 10m", f.drain), "e.g. --drain 8s"}
	}
	if f.audience != "" && strings.ContainsFunc(f.audience, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return cfg, usageError{"--audience holds whitespace or control characters", "give it exactly as the jobs request it"}
	}
	if f.publicURL != "" {
		u, err := token.ParseBrokerURL(f.publicURL)
		if err != nil {
			return cfg, flagFault("public-url", err)
		}
		cfg.PublicURL = u.String()
	}
	for item := range strings.FieldsFuncSeq(f.proxies, func(r rune) bool { return r == ',' || r == ' ' }) {
		pfx, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return cfg, usageError{fmt.Sprintf("--trusted-proxies: %q is not a CIDR", item), "e.g. --trusted-proxies 10.0.0.0/8,130.211.0.0/22"}
			}
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, pfx.Masked())
	}
	cfg.Audience, cfg.RateLimit, cfg.Burst = f.audience, r, f.burst
	return cfg, nil
}

// parseRate reads N/s, N/m or N/h.
func parseRate(s string) (rate.Limit, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	count, err := strconv.ParseFloat(n, 64)
	if !ok || err != nil || count <= 0 || count > 1e6 {
		return 0, errors.New("not a positive number of exchanges per s, m or h")
	}
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[unit]
	if per == 0 {
		return 0, fmt.Errorf("unit %q is not s, m or h", unit)
	}
	return rate.Limit(count / per), nil
}

// readParent reads the parent token from --api-token-file or the
// environment (never a flag), trimming the newline a file usually ends in.
func readParent(file string, getenv func(string) string) (token.Secret, error) {
	env := getenv(EnvName("api-token"))
	switch {
	case file != "" && env != "":
		return token.Secret{}, usageError{"both --api-token-file and " + EnvName("api-token") + " are set", "keep one of them"}
	case file == "" && env == "":
		return token.Secret{}, usageError{"no parent token: set " + EnvName("api-token") + " or --api-token-file",
			`the parent needs "API Tokens Write" (user-owned grants) or "Account API Tokens Write" (account-owned), and every group the policy grants`}
	case file != "":
		b, err := readLimited(file, maxTokenFile)
		if err != nil {
			return token.Secret{}, usageError{fmt.Sprintf("--api-token-file: %v", err), "point it at the file that holds only the parent token"}
		}
		env = strings.TrimRight(string(b), " \t\r\n")
	}
	s, err := token.ParseAPIToken(env)
	if err != nil {
		var ie *token.InputError
		if errors.As(err, &ie) {
			return token.Secret{}, usageError{"the parent token " + ie.Problem, "the file or variable must hold one Cloudflare API token and nothing else"}
		}
		return token.Secret{}, err
	}
	return s, nil
}

// readLimited reads a file of at most limit bytes; the error never quotes
// the contents.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // the operator's own flag names the file
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// loadPolicyFile reads and parses the policy; each fault is printed with
// its line, and the error says how many there were.
func loadPolicyFile(path string, p *printer) (*policy.Policy, error) {
	b, err := readLimited(path, policy.MaxFileSize)
	if err != nil {
		return nil, usageError{fmt.Sprintf("policy: %v", err), "give the policy file with --policy"}
	}
	pol, err := policy.Parse(b)
	if err != nil {
		return nil, policyFaults(path, err, p)
	}
	return pol, nil
}

// policyFaults prints each fault of a policy with its line and returns the
// summary error.
func policyFaults(path string, err error, p *printer) error {
	var le *policy.LoadError
	if !errors.As(err, &le) {
		return err
	}
	for _, f := range le.Faults {
		p.logf("%s: %s", path, f)
	}
	return usageError{fmt.Sprintf("%s has %d fault(s); the policy is not used", path, len(le.Faults)),
		"fix each line above; cf-scoped-token policy check " + path + " checks it again"}
}

// startFault renders what stopped the broker from starting.
func startFault(path string, err error, p *printer) error {
	var le *policy.LoadError
	var pe *broker.ParentError
	switch {
	case errors.As(err, &le):
		return policyFaults(path, err, p)
	case errors.As(err, &pe):
		return usageError{pe.Error(), `give a parent that may create tokens ("API Tokens Write", or "Account API Tokens Write" on the account of owner: account rules)`}
	}
	return fmt.Errorf("broker start: %w", err)
}

// flagFault renders a value package token refused for a flag.
func flagFault(name string, err error) error {
	var ie *token.InputError
	if errors.As(err, &ie) {
		return usageError{"--" + name + ": " + ie.Problem, "accepted: " + ie.Accepted}
	}
	return err
}

// serveBroker serves until ctx ends (SIGINT, SIGTERM), reloading the policy
// on SIGHUP, then drains: no new connections, in-flight exchanges finish
// within f.drain, and those still running after it are cancelled (the
// lifecycle deletes their tokens within the broker's grace).
func serveBroker(ctx context.Context, srv *broker.Server, ln net.Listener, f brokerFlags, p *printer) error {
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	hs := &http.Server{
		Handler:           srv,
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	go srv.Run(base, f.sweepEvery)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case err := <-served:
			return fmt.Errorf("broker: serve: %w", err)
		case <-hup:
			// On ctx, not base: a SIGTERM during a reload (which may wait on
			// issuers for up to a minute) ends the reload at once, and the
			// drain starts in time.
			reloadPolicy(ctx, srv, f.policy, p)
		case <-ctx.Done():
			break wait
		}
	}
	p.logf("broker: draining: no new connections; in-flight exchanges have %s", f.drain)
	// The drain is the whole stop: exchanges have all of it but a reserve,
	// and the reserve is for the clean-up of those cut off then (each
	// deletes what it made) and of the broker's own work, so that the process
	// is gone within --drain (Cloud Run kills it 10 s after SIGTERM).
	reserve := min(2*time.Second, f.drain/4)
	dctx, cancel := context.WithTimeout(context.Background(), f.drain-reserve)
	err := hs.Shutdown(dctx)
	cancel()
	rctx, cancel := context.WithTimeout(context.Background(), reserve)
	defer cancel()
	if err != nil {
		cancelBase()
		_ = hs.Shutdown(rctx)
		_ = hs.Close()
		p.logf("broker: drain bound reached; exchanges still running were cancelled")
	}
	_ = srv.Wait(rctx)
	p.logf("broker: stopped")
	return nil
}

// reloadPolicy reads the policy file again; a file with faults, or one the
// broker cannot serve, is reported and the old policy kept.
func reloadPolicy(ctx context.Context, srv *broker.Server, path string, p *printer) {
	b, err := readLimited(path, policy.MaxFileSize)
	if err != nil {
		p.logf("broker: reload: %v; the old policy stays", err)
		return
	}
	pol, err := policy.Parse(b)
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, brokerStartup)
		err = srv.Reload(rctx, pol)
		cancel()
	}
	var le *policy.LoadError
	switch {
	case errors.As(err, &le):
		for _, f := range le.Faults {
			p.logf("broker: reload: %s: %s", path, f)
		}
		p.logf("broker: reload: %s has %d fault(s); the old policy stays", path, len(le.Faults))
	case err != nil:
		p.logf("broker: reload: %v; the old policy stays", err)
	default:
		p.logf("broker: reload: policy %s (%d rules) in use", path, len(pol.Rules))
	}
}
