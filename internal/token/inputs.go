package token

import (
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Inputs are the raw values of the action's inputs, which the CLI's flags
// and CF_SCOPED_TOKEN_* variables carry too. Its tags are the one table of
// inputs, read by InputSpecs: env is the input's key (its action.yml name
// upper-cased, "-" written "_") under a prefix, envDefault its action.yml
// default, short the CLI's one-letter flag, help the CLI's help line. A test
// holds the table equal to action.yml.
type Inputs struct {
	APIToken   string `env:"API_TOKEN" help:"parent token that may create tokens; never a flag (it would show in the process list and shell history)"`
	AccountIDs string `env:"ACCOUNT_IDS" short:"a" help:"account ids (32 hex) the token may act on, separated by commas or spaces"`
	Scopes     string `env:"SCOPES" envDefault:"organizations" short:"s" help:"what it may touch: shorthands (organizations, apps-and-policies, service-tokens, device-posture, custom-pages, mutual-tls, ssh-auditing, audit-logs, population, policy-test), group base names or ids, each with optional :read, :write or :revoke"`
	Permission string `env:"PERMISSION" envDefault:"read" short:"p" help:"default level for scopes: read or write"`
	TTL        string `env:"TTL" envDefault:"1h" short:"t" help:"lifetime, 1m to 24h"`
	Owner      string `env:"OWNER" envDefault:"user" short:"o" help:"user (/user/tokens) or account (/accounts/{id}/tokens, one account)"`
	Name       string `env:"NAME" short:"n" help:"token name; a random suffix is added (default: cf-scoped-token and the run)"`
	AllowedIPs string `env:"ALLOWED_IPS" help:"CIDRs the token may be used from, or \"runner\" for this machine's public address"`
	Verify     string `env:"VERIFY" envDefault:"true" help:"check the token is active before handing it out: true or false"`
	Revoke     string `env:"REVOKE" envDefault:"true" help:"delete the token when the step ends: true or false"`
	ExportEnv  string `env:"EXPORT_ENV" envDefault:"false" help:"also export CLOUDFLARE_API_TOKEN to later steps: true or false"`
	Mode       string `env:"MODE" envDefault:"create" help:"create, revoke or sweep"`
	TokenID    string `env:"TOKEN_ID" help:"id of the token to delete"`
	APIURL     string `env:"API_URL" envDefault:"https://api.cloudflare.com/client/v4" help:"API base URL"`
	BrokerURL  string `env:"BROKER_URL" help:"keyless mode: the URL of a cf-scoped-token broker to trade the job's OIDC token at, instead of a parent token"`
	Audience   string `env:"AUDIENCE" help:"keyless mode: the audience of the OIDC token requested (default: the broker URL)"`
}

// InputSpec is one input: what the action and the CLI know of it.
type InputSpec struct {
	Name    string // as action.yml spells it: "account-ids"
	Key     string // under a prefix: "ACCOUNT_IDS" (INPUT_ACCOUNT_IDS, CF_SCOPED_TOKEN_ACCOUNT_IDS)
	Default string // "" when it has none
	Short   string // the CLI's one-letter flag, "" when it has none
	Help    string // the CLI's help line
}

// InputSpecs lists every input, in the order of Inputs' fields.
func InputSpecs() []InputSpec {
	typ := reflect.TypeFor[Inputs]()
	specs := make([]InputSpec, typ.NumField())
	for i := range specs {
		tag := typ.Field(i).Tag
		key := tag.Get("env")
		specs[i] = InputSpec{Name: strings.ToLower(strings.ReplaceAll(key, "_", "-")), Key: key,
			Default: tag.Get("envDefault"), Short: tag.Get("short"), Help: tag.Get("help")}
	}
	return specs
}

// RunContext is what the default token name is made of: where the run
// happens and a random suffix the caller drew.
type RunContext struct {
	Repository, RunID, RunAttempt, Job string
	Suffix                             string // random, [0-9a-f]; makes the name unique
}

// Request is a validated run: every field has been checked.
type Request struct {
	Mode     Mode
	APIToken Secret
	APIURL   *url.URL
	// BrokerURL is set in keyless mode: the broker to trade the job's OIDC
	// token at (APIToken is then empty); Audience is the aud that token
	// must carry.
	BrokerURL  *url.URL
	Audience   string
	Owner      Owner
	AccountIDs []string
	Scopes     []Scope
	TTL        time.Duration
	Name       string
	AllowedIPs []string // CIDRs, canonical
	RunnerIP   bool     // allowed-ips named "runner": add the runner's own address
	Verify     bool
	Revoke     bool
	ExportEnv  bool
	TokenID    string
}

// Endpoint is where the request's tokens live: the single account for an
// account-owned token, else the user's endpoints.
func (r Request) Endpoint() Endpoint {
	if r.Owner == OwnerAccount {
		return Endpoint{AccountID: r.AccountIDs[0]}
	}
	return Endpoint{}
}

// Limits on inputs (SPEC, action interface).
const (
	MinTTL        = time.Minute
	MaxTTL        = 24 * time.Hour
	MaxNameLength = 120 // Cloudflare's limit on a token name
	// SuffixLength is the length of a name's random suffix, in hex digits.
	SuffixLength = 12
	// MaxGivenNameLength leaves room for " " and the random suffix.
	MaxGivenNameLength = MaxNameLength - 1 - SuffixLength
	maxListItems       = 100 // accounts, scopes or CIDRs: far above any real need, bounds the request
)

// Parse validates every input and returns the first fault as an
// *InputError. The order puts what decides the rest first: mode, api-token,
// api-url, owner, verify, revoke, export-env, account-ids, token-id, then
// the create inputs permission, scopes, ttl, name and allowed-ips. It makes no call: a Request
// that comes back is safe to act on.
func (in Inputs) Parse(rc RunContext) (Request, error) {
	var r Request
	var err error
	if r.Mode, err = parseMode(in.Mode); err != nil {
		return Request{}, err
	}
	if err := r.parseCredential(in); err != nil {
		return Request{}, err
	}
	if r.APIURL, err = ParseAPIURL(in.APIURL); err != nil {
		return Request{}, err
	}
	if r.Owner, err = parseOwner(in.Owner); err != nil {
		return Request{}, err
	}
	if r.BrokerURL != nil {
		if err := checkKeyless(in, r); err != nil {
			return Request{}, err
		}
	}
	if r.Verify, err = ParseBool("verify", in.Verify); err != nil {
		return Request{}, err
	}
	if r.Revoke, err = ParseBool("revoke", in.Revoke); err != nil {
		return Request{}, err
	}
	if r.ExportEnv, err = ParseBool("export-env", in.ExportEnv); err != nil {
		return Request{}, err
	}

	// account-ids are needed to create (but for keyless mode, where none
	// means every account the broker's rule grants), and to find
	// account-owned tokens.
	if r.Mode == ModeCreate && r.BrokerURL == nil || r.Owner == OwnerAccount || strings.TrimSpace(in.AccountIDs) != "" {
		if r.AccountIDs, err = ParseAccountIDs(in.AccountIDs); err != nil {
			return Request{}, err
		}
	}
	if r.Owner == OwnerAccount && len(r.AccountIDs) != 1 {
		return Request{}, inputErrorf("owner", "one account id with "+Ref("owner", "account"),
			"account with %d account ids: an account-owned token belongs to exactly one account", len(r.AccountIDs))
	}

	switch r.Mode {
	case ModeCreate:
		if strings.TrimSpace(in.TokenID) != "" {
			return Request{}, inputErrorf("token-id", Ref("token-id")+" only with "+Ref("mode", "revoke"), "is given, but a token is being made, not deleted")
		}
		lvl, err := ParseLevel("permission", in.Permission)
		if err != nil {
			return Request{}, err
		}
		if r.Scopes, err = ParseScopes(in.Scopes, lvl); err != nil {
			return Request{}, err
		}
		if r.TTL, err = ParseTTL(in.TTL); err != nil {
			return Request{}, err
		}
		if r.Name, err = ParseName(in.Name, rc); err != nil {
			return Request{}, err
		}
		if r.AllowedIPs, r.RunnerIP, err = ParseAllowedIPs(in.AllowedIPs); err != nil {
			return Request{}, err
		}
	case ModeRevoke:
		if r.TokenID, err = ParseTokenID(in.TokenID); err != nil {
			return Request{}, err
		}
	}
	return r, nil
}

// parseCredential reads what the run authenticates with: a parent token
// (direct mode) or a broker (keyless mode), exactly one of them.
func (r *Request) parseCredential(in Inputs) error {
	var err error
	switch parent, brokerURL := strings.TrimSpace(in.APIToken), strings.TrimSpace(in.BrokerURL); {
	case parent != "" && brokerURL != "":
		return inputErrorf("broker-url", "either "+Ref("api-token")+" (a parent token: direct mode) or "+Ref("broker-url")+" (keyless mode), not both",
			"is given together with %s", Ref("api-token"))
	case brokerURL != "":
		if r.BrokerURL, err = ParseBrokerURL(brokerURL); err != nil {
			return err
		}
		if r.Audience, err = parseAudience(in.Audience, r.BrokerURL); err != nil {
			return err
		}
		return nil
	case parent == "":
		return inputErrorf("api-token", "a Cloudflare API token that may create tokens, from a secret, or "+Ref("broker-url")+" for keyless mode",
			"is empty, and so is %s", Ref("broker-url"))
	}
	r.APIToken, err = ParseAPIToken(in.APIToken)
	if err == nil && strings.TrimSpace(in.Audience) != "" {
		return inputErrorf("audience", Ref("audience")+" only with "+Ref("broker-url")+" (keyless mode)", "is given without %s", Ref("broker-url"))
	}
	return err
}

// checkKeyless holds the inputs that the broker decides to their
// defaults: in keyless mode it picks the endpoint and names the token, and
// only mode create makes sense (revoke and sweep need a parent token).
func checkKeyless(in Inputs, r Request) error {
	why := "with " + Ref("broker-url") + " the broker decides it"
	defaultAPIURL := inputDefault("api-url")
	switch {
	case r.Mode != ModeCreate:
		return inputErrorf("mode", Ref("mode", "create")+" with "+Ref("broker-url")+" (keyless mode): revoke and sweep need a parent token", "is %s", r.Mode)
	case r.Owner != OwnerUser:
		return inputErrorf("owner", "its default, user, "+why+" (a rule's grant names the owner)", "is %s", r.Owner)
	case r.APIURL.String() != defaultAPIURL:
		return inputErrorf("api-url", "its default, "+defaultAPIURL+", "+why, "is %s", clip(r.APIURL.String()))
	case strings.TrimSpace(in.Name) != "":
		return inputErrorf("name", "empty with "+Ref("broker-url")+": "+why+" (cf-scoped-token, the repository and the run)", "is given")
	}
	return nil
}

// inputDefault is an input's default, from the table.
func inputDefault(name string) string {
	for _, s := range InputSpecs() {
		if s.Name == name {
			return s.Default
		}
	}
	return ""
}

// parseAudience reads the audience input: the aud of the OIDC token the job
// asks for, which must equal the broker's; empty means the broker's URL.
func parseAudience(s string, brokerURL *url.URL) (string, error) {
	const accepted = "the audience the broker accepts (its --audience or the policy's audience), printable, no spaces, at most 256 characters; empty: the broker-url"
	s = strings.TrimSpace(s)
	if s == "" {
		return brokerURL.String(), nil
	}
	if len(s) > 256 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || !unicode.IsPrint(r) }) {
		return "", inputErrorf("audience", accepted, "%q is not an audience", clip(s))
	}
	return s, nil
}

// ParseAPIToken reads the parent token. It must be one run of visible
// ASCII characters: anything else could never be sent as a header value,
// so it is refused here rather than retried against the API. The error
// never shows the value.
func ParseAPIToken(s string) (Secret, error) {
	const accepted = "a Cloudflare API token that may create tokens, from a secret"
	s = strings.TrimSpace(s)
	if s == "" {
		return Secret{}, inputErrorf("api-token", accepted, "is empty")
	}
	for _, r := range s {
		switch {
		case r == ' ' || r == '\t' || r == '\r' || r == '\n':
			return Secret{}, inputErrorf("api-token", "a single Cloudflare API token", "contains whitespace inside the value")
		case r < 0x21 || r > 0x7e:
			return Secret{}, inputErrorf("api-token", "a single Cloudflare API token: visible ASCII characters only", "contains a control or non-ASCII character")
		}
	}
	return NewSecret(s), nil
}

func parseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeCreate, ModeRevoke, ModeSweep:
		return m, nil
	case "":
		return ModeCreate, nil
	}
	return "", inputErrorf("mode", "create, revoke or sweep", "%q is not a mode", clip(s))
}

func parseOwner(s string) (Owner, error) {
	switch o := Owner(strings.ToLower(strings.TrimSpace(s))); o {
	case OwnerUser, OwnerAccount:
		return o, nil
	case "":
		return OwnerUser, nil
	}
	return "", inputErrorf("owner", "user or account", "%q is not an owner", clip(s))
}

// ParseLevel reads a level (read or write) for the named input.
func ParseLevel(input, s string) (Level, error) {
	switch l := Level(strings.ToLower(strings.TrimSpace(s))); l {
	case Read, Write:
		return l, nil
	case "":
		return Read, nil
	}
	return "", inputErrorf(input, "read or write", "%q is not a level", clip(s))
}

// ParseBool reads a boolean input the way the Actions toolkit's
// getBooleanInput does (YAML 1.2 core schema): true, True, TRUE, false,
// False, FALSE. Anything else is refused rather than guessed.
func ParseBool(input, s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	}
	return false, inputErrorf(input, "true or false", "%q is not a boolean", clip(s))
}

// splitList splits a list on commas, whitespace or newlines.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// ParseAccountIDs reads one or more account ids (32 lowercase hex),
// separated by commas, spaces or newlines. Duplicates collapse; order stays.
func ParseAccountIDs(s string) ([]string, error) {
	const accepted = "one or more Cloudflare account ids (32 lowercase hex characters, from the dashboard's account home), separated by commas, spaces or newlines"
	items := splitList(s)
	if len(items) == 0 {
		return nil, inputErrorf("account-ids", accepted, "is empty")
	}
	if len(items) > maxListItems {
		return nil, inputErrorf("account-ids", accepted, "lists %d ids, more than %d", len(items), maxListItems)
	}
	var ids []string
	seen := map[string]bool{}
	for _, id := range items {
		if !IsHexID(id) {
			if IsHexID(strings.ToLower(id)) {
				return nil, inputErrorf("account-ids", accepted, "%q has upper-case letters", clip(id))
			}
			return nil, inputErrorf("account-ids", accepted, "%q is not an account id", clip(id))
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// ParseTokenID reads the id of a token to revoke (32 lowercase hex).
func ParseTokenID(s string) (string, error) {
	id := strings.TrimSpace(s)
	if id == "" {
		return "", inputErrorf("token-id", "the id of the token to delete, as its create gave it", "is empty")
	}
	if !IsHexID(id) {
		return "", inputErrorf("token-id", "a token id of 32 lowercase hex characters, as its create gave it", "%q is not a token id", clip(id))
	}
	return id, nil
}

// IsHexID reports whether s is shaped like a Cloudflare id — of an account,
// a token or a permission group: 32 lowercase hex characters.
func IsHexID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ParseTTL reads the token's lifetime: Go duration syntax, whole seconds,
// from MinTTL to MaxTTL.
func ParseTTL(s string) (time.Duration, error) {
	const accepted = "a Go duration from 1m to 24h, such as 15m, 1h or 1h30m"
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, inputErrorf("ttl", accepted, "%q is not a duration", clip(s))
	case d < MinTTL:
		return 0, inputErrorf("ttl", accepted, "%s is shorter than %s", d, MinTTL)
	case d > MaxTTL:
		return 0, inputErrorf("ttl", accepted, "%s is longer than %s", d, MaxTTL)
	case d%time.Second != 0:
		return 0, inputErrorf("ttl", accepted, "%s is not a whole number of seconds", d)
	}
	return d, nil
}

// ParseName makes the token's name: the given name or the default one (the
// prefix, repository, run id and attempt, job), then the random suffix, so
// that a token whose create answer was lost can be found by its name.
func ParseName(given string, rc RunContext) (string, error) {
	given = strings.TrimSpace(given)
	if given == "" {
		return DefaultName(rc), nil
	}
	accepted := fmt.Sprintf("printable characters, at most %d (a space and a %d-character random suffix are added)", MaxGivenNameLength, SuffixLength)
	if !utf8.ValidString(given) {
		return "", inputErrorf("name", accepted, "is not valid UTF-8")
	}
	for _, r := range given {
		if !unicode.IsPrint(r) {
			return "", inputErrorf("name", accepted, "contains the non-printable character %U", r)
		}
	}
	if n := utf8.RuneCountInString(given); n > MaxGivenNameLength {
		return "", inputErrorf("name", accepted, "is %d characters long", n)
	}
	if LooksLikeSecret(given) {
		// A name shows in the dashboard, the outputs, the summary and logs.
		return "", inputErrorf("name", accepted, "looks like it holds an API token; a name is shown in the dashboard, outputs and logs")
	}
	return given + " " + rc.Suffix, nil
}

// DefaultName is the name a token gets when the user gives none. Parts that
// would push it past MaxNameLength are shortened (the repository first).
func DefaultName(rc RunContext) string {
	repo, job := rc.Repository, rc.Job
	if repo == "" {
		repo = "local"
	}
	run := rc.RunID
	if rc.RunAttempt != "" {
		run += "." + rc.RunAttempt
	}
	parts := []string{strings.TrimSpace(NamePrefix), printable(repo), printable(run), printable(job), rc.Suffix}
	name := strings.Join(nonEmpty(parts), " ")
	for over := utf8.RuneCountInString(name) - MaxNameLength; over > 0; over = utf8.RuneCountInString(name) - MaxNameLength {
		// Shorten the longest of repository, run and job (the repository on
		// a tie), keeping prefix and suffix intact. The run is a candidate
		// too: it comes from the environment, and when repository and job
		// were already cut to nothing a long run id would loop for ever.
		i := 1
		for _, j := range []int{2, 3} {
			if utf8.RuneCountInString(parts[j]) > utf8.RuneCountInString(parts[i]) {
				i = j
			}
		}
		if parts[i] == "" {
			break // only prefix and suffix are left: nothing more to shorten
		}
		r := []rune(parts[i])
		parts[i] = string(r[:max(0, len(r)-over)])
		name = strings.Join(nonEmpty(parts), " ")
	}
	return name
}

func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) && r != ' ' {
			return r
		}
		return -1
	}, s)
}

func nonEmpty(parts []string) []string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// RunnerKeyword in allowed-ips stands for the runner's own public address.
const RunnerKeyword = "runner"

// ParseAllowedIPs reads the CIDRs a token may be used from, separated by
// commas, spaces or newlines. A bare address is a single-host prefix; the
// word "runner" asks for the runner's own address, which the caller looks up.
func ParseAllowedIPs(s string) (cidrs []string, runner bool, err error) {
	const accepted = `IPv4 or IPv6 CIDRs (203.0.113.0/24, 2001:db8::/32), single addresses, or the word "runner", separated by commas, spaces or newlines`
	items := splitList(s)
	if len(items) > maxListItems {
		return nil, false, inputErrorf("allowed-ips", accepted, "lists %d items, more than %d", len(items), maxListItems)
	}
	seen := map[string]bool{}
	for _, item := range items {
		if strings.EqualFold(item, RunnerKeyword) {
			runner = true
			continue
		}
		p, err := parsePrefix(item)
		if err != nil {
			return nil, false, inputErrorf("allowed-ips", accepted, "%q is not a CIDR", clip(item))
		}
		if p != p.Masked() {
			return nil, false, inputErrorf("allowed-ips", accepted, "%q has host bits set (did you mean %s?)", item, p.Masked())
		}
		if c := p.String(); !seen[c] {
			seen[c] = true
			cidrs = append(cidrs, c)
		}
	}
	return cidrs, runner, nil
}

// parsePrefix reads a CIDR or a bare address (as a single-host prefix).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// HostPrefix is the single-host CIDR of an address, for the runner's own.
func HostPrefix(addr string) (string, error) {
	p, err := parsePrefix(strings.TrimSpace(addr))
	if err != nil || strings.Contains(addr, "/") {
		return "", fmt.Errorf("%q is not an IP address", clip(addr))
	}
	return p.String(), nil
}

// ParseAPIURL reads the API base URL. https is required unless the host is
// a loopback address: the parent token must never cross a network in clear
// text. The host comes back in lower case (a proxy bypass and every later
// check compare it exactly: "LOCALHOST" once passed as loopback here while
// Go's proxy rules sent it to HTTP_PROXY), and the port, if any, is a
// number from 1 to 65535: a URL no connection can be made to is refused
// here, not retried.
func ParseAPIURL(s string) (*url.URL, error) {
	return parseServiceURL("api-url", s,
		"an https:// URL such as https://api.cloudflare.com/client/v4, or http:// to a loopback host (127.0.0.1, [::1], localhost) for the local emulator",
		"the parent token")
}

// parseServiceURL reads the base URL of a service a credential is sent
// to, for the named input; what names the credential in the error.
func parseServiceURL(input, s, accepted, what string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	// u.Hostname() too: "https://:443" has a Host but no host to call.
	if err != nil || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return nil, inputErrorf(input, accepted, "%q is not an absolute URL", clip(s))
	}
	if u.User != nil {
		return nil, inputErrorf(input, accepted, "must not carry credentials")
	}
	// ForceQuery: a bare "?" would be carried into every request URL.
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, inputErrorf(input, accepted, "must not have a query or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, inputErrorf(input, accepted, "port %q is not a number from 1 to 65535", clip(p))
		}
	} else {
		u.Host = strings.TrimSuffix(u.Host, ":") // "host:" means the default port
	}
	u.Host = strings.ToLower(u.Host)
	switch u.Scheme = strings.ToLower(u.Scheme); u.Scheme {
	case "https":
	case "http":
		if !IsLoopback(u.Hostname()) {
			return nil, inputErrorf(input, accepted, "http:// to %s would send %s in clear text", clip(u.Hostname()), what)
		}
	default:
		return nil, inputErrorf(input, accepted, "scheme %q is not https", clip(u.Scheme))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// IsLoopback reports whether host (a URL's Hostname) names this machine:
// "localhost" in any case, or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// clip shortens user text quoted back in an error, so a huge value cannot
// flood the log, and hides a value that looks like an API token: a secret
// pasted into the wrong input must not be printed back.
func clip(s string) string {
	const n = 40
	if LooksLikeSecret(s) {
		return "(a value that looks like an API token, not shown)"
	}
	s = strings.NewReplacer("‹", "<", "›", ">").Replace(s) // the marks of Ref are the messages' own
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// LooksLikeSecret reports whether s holds something shaped like a secret
// that must not be printed back: a JWT (an OIDC token), the cfut_/cfat_
// prefix of new Cloudflare tokens, or a run of 40 or more
// characters of the older alphabet that mixes digits, upper- and lower-case
// letters, as random tokens do (reference/cloudflare-api.md, Responses) and
// long words, names and hex digests do not. It looks anywhere in s, not only
// at the whole value: in an item such as "organizations:<token>" or a host
// such as "http://<token>/" the part that clip keeps would otherwise be the
// token itself.
func LooksLikeSecret(s string) bool {
	if strings.Contains(s, "cfut_") || strings.Contains(s, "cfat_") {
		return true
	}
	if i := strings.Index(s, "eyJ"); i >= 0 && strings.Count(s[i:], ".") >= 2 { // a JWT: its header {" is eyJ in base64url, then two dots
		return true
	}
	var run int
	var digit, upper, lower bool
	for _, r := range s + " " { // the space ends the last run
		switch {
		case '0' <= r && r <= '9':
			digit = true
		case 'A' <= r && r <= 'Z':
			upper = true
		case 'a' <= r && r <= 'z':
			lower = true
		case r == '_' || r == '-':
		default:
			if run >= 40 && digit && upper && lower {
				return true
			}
			run, digit, upper, lower = 0, false, false, false
			continue
		}
		run++
	}
	return false
}
