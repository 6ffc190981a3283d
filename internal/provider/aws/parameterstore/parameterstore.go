// Package parameterstore is the AWS Systems Manager Parameter Store provider
// ("aws-parameterstore"). Reads go through GetParameter, batches through
// GetParameters (10 names a call) and find through GetParametersByPath, or, with tags,
// DescribeParameters then GetParameters. SecureStrings are always decrypted.
//
// A batch holds at most one selector per parameter, so that answers from
// AWS-compatible emulators that omit GetParameters' Selector (LocalStack-style) still
// match what was asked: a version by its Version, a label by the parameter's name
// (GetParameters never returns labels). Answers that carry Selector match exactly.
package parameterstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
)

// Name is the provider's registry name.
const Name = "aws-parameterstore"

const (
	// maxBatch is GetParameters' name limit, and GetParametersByPath's page limit.
	maxBatch = 10
	// describePage is DescribeParameters' largest page.
	describePage = 50
	// findMaxKeys bounds what one find may return (every value is held in memory).
	findMaxKeys = 10000
)

// ssmAPI is the part of the SSM client this provider uses.
type ssmAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
	GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
	DescribeParameters(ctx context.Context, in *ssm.DescribeParametersInput, optFns ...func(*ssm.Options)) (*ssm.DescribeParametersOutput, error)
}

// Option adjusts the provider (see WithTimeout).
type Option = awsp.Option

// WithTimeout bounds every AWS call the provider's clients make, STS calls for
// credentials included (default 30s).
func WithTimeout(d time.Duration) Option { return awsp.WithTimeout(d) }

// New returns the provider with production settings adjusted by opts.
func New(opts ...Option) provider.Provider {
	var o awsp.Options
	for _, f := range opts {
		f(&o)
	}
	return NewWithOptions(o)
}

// NewWithOptions returns the provider with tuned shared settings (tests: short
// backoff; metrics: an observer).
func NewWithOptions(opts awsp.Options) provider.Provider {
	return awsp.NewProvider(Name, v1alpha1.AWSServiceParameterStore, opts, func(cfg awssdk.Config) provider.Client {
		return &Client{api: ssm.NewFromConfig(cfg)}
	})
}

// Client reads one account and region as one identity; safe for concurrent use.
type Client struct {
	api ssmAPI
	// maxPages overrides awsp.MaxPages (tests).
	maxPages int
}

var (
	_ provider.Client      = (*Client)(nil)
	_ provider.BatchGetter = (*Client)(nil)
)

// selector validates ref and encodes it the way SSM reads it: the name, then the
// version suffix parseVersion makes.
func selector(ref provider.Ref) (string, error) {
	if ref.Key == "" {
		return "", fmt.Errorf("parameterstore: key is empty: %w", awsp.Wrap(provider.ErrInvalid, "EmptyKey", nil))
	}
	if err := awsp.CheckKey(ref.Key); err != nil {
		return "", fmt.Errorf("parameterstore get %q: %w", ref.Key, err)
	}
	suffix, err := parseVersion(ref.Version)
	if err != nil {
		return "", fmt.Errorf("parameterstore get %q: %w", ref.Key, err)
	}
	return ref.Key + suffix, nil
}

// labelRe is what SSM accepts as a label: letters, digits, ".", "-", "_", at most
// 100 characters, not starting with a digit.
var labelRe = regexp.MustCompile(`^[a-zA-Z._-][a-zA-Z0-9._-]{0,99}$`)

// parseVersion turns Ref.Version into the selector suffix SSM reads after the name:
// a number selects that version (":3"), anything else a label (":live"). It is pure
// and refuses what SSM would refuse or read differently, so a typo is an ErrInvalid
// naming the field, never a request that answers "not found": a version is a positive
// number (written without leading zeros in the request), a label follows SSM's label
// rules and does not start with "aws" or "ssm" (reserved).
func parseVersion(v string) (string, error) {
	invalid := func(reason string) (string, error) {
		return "", fmt.Errorf("version %q: %s: %w", v, reason, awsp.Wrap(provider.ErrInvalid, "InvalidVersion", provider.ErrSpec))
	}
	switch {
	case v == "":
		return "", nil
	case isNumber(v):
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return invalid("a version number is a positive 64-bit number")
		}
		return ":" + strconv.FormatInt(n, 10), nil
	case !labelRe.MatchString(v):
		return invalid("a label has 1 to 100 letters, digits, '.', '-' or '_' and does not start with a digit")
	case isSignedNumber(v):
		// "-1" fits the label rules but could be read as a version: neither, then.
		return invalid("a label does not look like a number")
	case len(v) >= 3 && (strings.EqualFold(v[:3], "aws") || strings.EqualFold(v[:3], "ssm")):
		return invalid(`a label does not start with "aws" or "ssm"`)
	}
	return ":" + v, nil
}

func isSignedNumber(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}

func isNumber(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// secretOf is the value of one answer. A parameter without a Value did not say it is
// gone: it is ErrUnavailable. A version of 0 (absent) is left empty.
func secretOf(p *ssmtypes.Parameter) (provider.Secret, error) {
	if p.Value == nil {
		return provider.Secret{}, awsp.MissingValue("Value")
	}
	s := provider.Secret{Value: []byte(*p.Value)} // StringList values arrive comma-joined, as stored
	if p.Version > 0 {
		s.Version = strconv.FormatInt(p.Version, 10)
	}
	return s, nil
}

// GetSecret reads one parameter (name or ARN), decrypted, at Ref.Version.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Secret, error) {
	name, err := selector(ref)
	if err != nil {
		return provider.Secret{}, err
	}
	out, err := c.api.GetParameter(ctx, &ssm.GetParameterInput{Name: awssdk.String(name), WithDecryption: awssdk.Bool(true)})
	if err != nil {
		return provider.Secret{}, fmt.Errorf("parameterstore get %q: %w", name, awsp.MapError(err))
	}
	if out.Parameter == nil {
		return provider.Secret{}, fmt.Errorf("parameterstore get %q: %w", name, awsp.MissingValue("Parameter"))
	}
	sec, err := secretOf(out.Parameter)
	if err != nil {
		return provider.Secret{}, fmt.Errorf("parameterstore get %q: %w", name, err)
	}
	return sec, nil
}

// MaxBatch is GetParameters' name limit.
func (c *Client) MaxBatch() int { return maxBatch }

// MaxCallsPerSecond: Parameter Store's default throughput for GetParameter(s) and
// GetParametersByPath is 40 per second per account and region, shared with every
// other reader; one store takes at most half of it (200 parameters per second in
// batches of 10).
func (c *Client) MaxCallsPerSecond() float64 { return 20 }

// GetSecrets reads refs with GetParameters, 10 a call; versions and labels travel as
// "name:version" / "name:label" selectors. Unknown names (InvalidParameters) are
// ErrNotFound in their Result. The error is returned only when every call failed.
func (c *Client) GetSecrets(ctx context.Context, refs []provider.Ref) ([]provider.Result, error) {
	res := make([]provider.Result, len(refs))
	bySel := map[string][]int{}
	var sels []string
	invalid := 0
	for i, r := range refs {
		sel, err := selector(r)
		if err != nil {
			res[i].Err = err
			invalid++
			continue
		}
		if _, seen := bySel[sel]; !seen {
			sels = append(sels, sel)
		}
		bySel[sel] = append(bySel[sel], i)
	}
	var callErr error
	calls, failed := 0, 0
	for _, chunk := range batches(sels) {
		calls++
		got, err := c.getParameters(ctx, chunk)
		if err != nil {
			failed++
			callErr = err
		}
		for _, sel := range chunk {
			r := provider.Result{Err: err}
			if err == nil {
				r = got[sel]
			}
			for _, i := range bySel[sel] {
				res[i] = r
			}
		}
	}
	if calls > 0 && failed == calls && invalid == 0 {
		return nil, callErr
	}
	return res, nil
}

// batches packs selectors into GetParameters calls of at most maxBatch, with at most
// one selector per parameter in a call. Then an answer without Selector still says
// which selector it answers (see answers): AWS always returns Selector for a
// "name:version" or "name:label" read, but LocalStack-style emulators omit it. The
// price is one more call per extra version of one parameter read in the same round
// (reading "/db" and "/db:3" together takes two calls); the usual round, one
// selector per parameter, takes ceil(n/10) calls as before.
func batches(sels []string) [][]string {
	var out [][]string
	var names []map[string]bool
	for _, sel := range sels {
		name, _ := splitSelector(sel)
		i := 0
		for i < len(out) && (len(out[i]) == maxBatch || names[i][name]) {
			i++
		}
		if i == len(out) {
			out = append(out, nil)
			names = append(names, map[string]bool{})
		}
		out[i] = append(out[i], sel)
		names[i][name] = true
	}
	return out
}

// splitSelector splits a selector we built (selector) into the parameter's name or
// ARN and the ":version" / ":label" suffix. Parameter names never contain ':'; ARNs
// do, before the name's last '/'.
func splitSelector(sel string) (name, suffix string) {
	i := strings.LastIndexByte(sel, '/') + 1
	if j := strings.IndexByte(sel[i:], ':'); j >= 0 {
		return sel[:i+j], sel[i+j:]
	}
	return sel, ""
}

// answers matches GetParameters' answers to the selectors of one call (one selector
// per parameter: batches). An answer with Selector matches that selector exactly: its
// bare name or, when present, its ARN plus Selector (AWS never echoes the ARN spelling
// that may have been asked for). An answer without Selector (LocalStack-style
// emulators; AWS for a bare name) matches the one selector asked for its parameter:
//   - "name": it is the current version;
//   - "name:3": only when its Version is 3 (another version is not what was asked);
//   - "name:label": GetParameters never returns labels, so nothing can be checked: an
//     answer for the name to a request that named the label is taken as the label's
//     version (the server resolved the label or would have listed the selector in
//     InvalidParameters).
//
// Two answers without Selector for one parameter leave "which is which?" open: only
// a version number can then pick one.
func answers(sels []string, params []ssmtypes.Parameter) map[string]*ssmtypes.Parameter {
	asked := make(map[string]string, len(sels)) // name or ARN -> selector
	for _, sel := range sels {
		name, _ := splitSelector(sel)
		asked[name] = sel
	}
	bare := map[string]int{}
	for _, p := range params {
		if p.Name != nil && p.Selector == nil {
			bare[*p.Name]++
		}
	}
	byKey := make(map[string]*ssmtypes.Parameter, len(params))
	for i := range params {
		p := &params[i]
		if p.Name == nil {
			continue // cannot be matched: its selector ends up IncompleteBatchResponse
		}
		for _, name := range []*string{p.Name, p.ARN} {
			if name == nil {
				continue
			}
			if p.Selector != nil {
				byKey[*name+*p.Selector] = p
				continue
			}
			sel, ok := asked[*name]
			if !ok {
				continue
			}
			_, suffix := splitSelector(sel)
			switch {
			case isNumber(strings.TrimPrefix(suffix, ":")):
				if strconv.FormatInt(p.Version, 10) == suffix[1:] {
					byKey[sel] = p
				}
			case bare[*p.Name] == 1:
				byKey[sel] = p
			}
		}
	}
	return byKey
}

// getParameters reads up to 10 selectors (already checked, one per parameter) in one
// call, decrypted. Only InvalidParameters makes a selector ErrNotFound; one the answer
// does not mention, or mentions without a value, is ErrUnavailable.
func (c *Client) getParameters(ctx context.Context, sels []string) (map[string]provider.Result, error) {
	out, err := c.api.GetParameters(ctx, &ssm.GetParametersInput{Names: sels, WithDecryption: awssdk.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("parameterstore batch get of %d parameters: %w", len(sels), awsp.MapManyError(err))
	}
	byKey := answers(sels, out.Parameters)
	invalid := make(map[string]bool, len(out.InvalidParameters))
	for _, n := range out.InvalidParameters {
		invalid[n] = true
	}
	got := make(map[string]provider.Result, len(sels))
	for _, sel := range sels {
		switch p := byKey[sel]; {
		case p != nil:
			sec, err := secretOf(p)
			if err != nil {
				err = fmt.Errorf("parameterstore get %q: %w", sel, err)
			}
			got[sel] = provider.Result{Secret: sec, Err: err}
		case invalid[sel]:
			got[sel] = provider.Result{Err: fmt.Errorf("parameterstore get %q: %w", sel, awsp.Wrap(provider.ErrNotFound, "InvalidParameters", nil))}
		default:
			got[sel] = provider.Result{Err: fmt.Errorf("parameterstore get %q: %w", sel, awsp.Wrap(provider.ErrUnavailable, "IncompleteBatchResponse", nil))}
		}
	}
	return got, nil
}

// findPath normalises a find path: it starts with "/" and has no trailing slash
// (except the root itself).
func findPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if p != "/" {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p
}

// Find returns the decrypted parameters under q.Path (recursively), keyed by their
// full name, filtered by q.NameRegexp (on the full name) and q.Tags.
//
// Without tags this is GetParametersByPath. SSM refuses tag filters there
// (InvalidFilterKey), so with tags the names come from DescribeParameters (Path and
// tag:<key> filters) and the values from GetParameters, 10 at a time. A tag with an
// empty value is matched on its key.
func (c *Client) Find(ctx context.Context, q provider.FindQuery) (map[string]provider.Secret, error) {
	var re *regexp.Regexp
	if q.NameRegexp != "" {
		var err error
		if re, err = regexp.Compile(q.NameRegexp); err != nil {
			return nil, fmt.Errorf("parameterstore find: name regexp does not compile: %w", awsp.Wrap(provider.ErrInvalid, "InvalidRegexp", nil))
		}
	}
	if err := awsp.CheckFindPath(q.Path); err != nil {
		return nil, fmt.Errorf("parameterstore find %q: path: %w", q.Path, err)
	}
	path := findPath(q.Path)
	match := func(name string) bool { return re == nil || re.MatchString(name) }
	if len(q.Tags) == 0 {
		// GetParametersByPath returns values with the names: q.Allowed can only be
		// applied by the caller afterwards. The path itself was admitted.
		return c.findByPath(ctx, path, match)
	}
	return c.findByTags(ctx, path, q.Tags, match, q.Allowed)
}

func (c *Client) findByPath(ctx context.Context, path string, match func(string) bool) (map[string]provider.Secret, error) {
	found := map[string]provider.Secret{}
	in := &ssm.GetParametersByPathInput{
		Path: awssdk.String(path), Recursive: awssdk.Bool(true), WithDecryption: awssdk.Bool(true),
		MaxResults: awssdk.Int32(maxBatch),
	}
	pages := awsp.Pages{Max: c.maxPages}
	for {
		out, err := c.api.GetParametersByPath(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("parameterstore find %q: %w", path, awsp.MapManyError(err))
		}
		for i := range out.Parameters {
			p := &out.Parameters[i]
			name, err := listedName(p.Name)
			if err != nil {
				return nil, fmt.Errorf("parameterstore find %q: %w", path, err)
			}
			if !match(name) {
				continue
			}
			if _, dup := found[name]; !dup && len(found) == findMaxKeys {
				return nil, fmt.Errorf("parameterstore find %q: more than %d parameters match: %w", path, findMaxKeys, awsp.Wrap(provider.ErrInvalid, "TooManyResults", nil))
			}
			sec, err := secretOf(p)
			if err != nil {
				return nil, fmt.Errorf("parameterstore find %q: %w", path, err)
			}
			sec.Key = name
			found[name] = sec
		}
		more, err := pages.Next(out.NextToken)
		if err != nil {
			return nil, fmt.Errorf("parameterstore find %q: %w", path, err)
		}
		if !more {
			return found, nil
		}
		in.NextToken = out.NextToken
	}
}

// listedName is the name of a listed parameter, which becomes a key the engine
// checks and writes (and, with tags, a request): it must be present and canonical.
// The error does not quote it: it is backend content.
func listedName(name *string) (string, error) {
	if name == nil {
		return "", awsp.Wrap(provider.ErrUnavailable, "MalformedResponse", errors.New("listed parameter without Name"))
	}
	if err := awsp.CheckKey(*name); err != nil {
		return "", fmt.Errorf("a listed name: %w", err)
	}
	return *name, nil
}

func (c *Client) findByTags(ctx context.Context, path string, tags map[string]string, match func(string) bool, allowed func(string) bool) (map[string]provider.Secret, error) {
	var filters []ssmtypes.ParameterStringFilter
	if path != "/" {
		filters = append(filters, ssmtypes.ParameterStringFilter{Key: awssdk.String("Path"), Option: awssdk.String("Recursive"), Values: []string{path}})
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := ssmtypes.ParameterStringFilter{Key: awssdk.String("tag:" + k), Option: awssdk.String("Equals")}
		if v := tags[k]; v != "" {
			f.Values = []string{v}
		}
		filters = append(filters, f)
	}

	var names []string
	seen := map[string]bool{}
	in := &ssm.DescribeParametersInput{ParameterFilters: filters, MaxResults: awssdk.Int32(describePage)}
	pages := awsp.Pages{Max: c.maxPages}
	for {
		out, err := c.api.DescribeParameters(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("parameterstore find %q: describe: %w", path, awsp.MapManyError(err))
		}
		for _, m := range out.Parameters {
			name, err := listedName(m.Name)
			if err != nil {
				return nil, fmt.Errorf("parameterstore find %q: describe: %w", path, err)
			}
			if !match(name) || seen[name] {
				continue
			}
			if len(names) == findMaxKeys {
				return nil, fmt.Errorf("parameterstore find %q: more than %d parameters match: %w", path, findMaxKeys, awsp.Wrap(provider.ErrInvalid, "TooManyResults", nil))
			}
			seen[name] = true
			names = append(names, name)
		}
		more, err := pages.Next(out.NextToken)
		if err != nil {
			return nil, fmt.Errorf("parameterstore find %q: describe: %w", path, err)
		}
		if !more {
			break
		}
		in.NextToken = out.NextToken
	}

	if allowed != nil {
		for _, n := range names {
			if !allowed(n) {
				// Refused before any value is read; the name came from the backend.
				return nil, fmt.Errorf("parameterstore find %q: a parameter found is not allowed: %w", path, awsp.Wrap(provider.ErrNotAllowed, "", nil))
			}
		}
	}
	found := make(map[string]provider.Secret, len(names))
	for start := 0; start < len(names); start += maxBatch {
		chunk := names[start:min(start+maxBatch, len(names))]
		got, err := c.getParameters(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("parameterstore find %q: %w", path, err)
		}
		for _, n := range chunk {
			r := got[n]
			if r.Err != nil {
				if errors.Is(provider.Classify(r.Err), provider.ErrNotFound) {
					continue // deleted since it was described
				}
				return nil, fmt.Errorf("parameterstore find %q: %w", path, r.Err)
			}
			r.Secret.Key = n
			found[n] = r.Secret
		}
	}
	return found, nil
}

// Check describes one parameter: a cheap call that needs valid credentials.
func (c *Client) Check(ctx context.Context) error {
	if _, err := c.api.DescribeParameters(ctx, &ssm.DescribeParametersInput{MaxResults: awssdk.Int32(1)}); err != nil {
		return fmt.Errorf("parameterstore DescribeParameters: %w", awsp.MapError(err))
	}
	return nil
}

// Close has nothing to release: AWS credentials are not sessions.
func (c *Client) Close(context.Context) error { return nil }
