// Package parameterstore is the AWS Systems Manager Parameter Store provider
// ("aws-parameterstore"). Reads go through GetParameter, batches through
// GetParameters (10 names a call) and find through GetParametersByPath, or, with tags,
// DescribeParameters then GetParameters. SecureStrings are always decrypted.
package parameterstore

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

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

// New returns the provider with production settings.
func New() provider.Provider { return NewWithOptions(awsp.Options{}) }

// NewWithOptions returns the provider with tuned shared settings (tests: short
// backoff; metrics: an observer).
func NewWithOptions(opts awsp.Options) provider.Provider {
	return awsp.NewProvider(Name, v1alpha1.AWSServiceParameterStore, opts, func(cfg awssdk.Config) provider.Client {
		return &Client{api: ssm.NewFromConfig(cfg)}
	})
}

// Client reads one account and region as one identity; safe for concurrent use.
type Client struct{ api ssmAPI }

var (
	_ provider.Client      = (*Client)(nil)
	_ provider.BatchGetter = (*Client)(nil)
)

// selector encodes Ref.Version the way SSM reads it: a number selects that version
// ("name:3"), anything else a label ("name:live"); both use the same syntax.
func selector(ref provider.Ref) (string, error) {
	if ref.Key == "" {
		return "", fmt.Errorf("parameterstore: key is empty: %w", provider.ErrInvalid)
	}
	if ref.Version == "" {
		return ref.Key, nil
	}
	if strings.ContainsAny(ref.Version, ":/ ") {
		return "", fmt.Errorf("parameterstore %q: version %q is neither a version number nor a label: %w", ref.Key, ref.Version, provider.ErrInvalid)
	}
	if isNumber(ref.Version) {
		if n, err := strconv.ParseInt(ref.Version, 10, 64); err != nil || n < 1 {
			return "", fmt.Errorf("parameterstore %q: version %q is not a positive number: %w", ref.Key, ref.Version, provider.ErrInvalid)
		}
	}
	return ref.Key + ":" + ref.Version, nil
}

func isNumber(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func secretOf(p *ssmtypes.Parameter) provider.Secret {
	// StringList values arrive comma-joined, as stored.
	return provider.Secret{Value: []byte(awssdk.ToString(p.Value)), Version: strconv.FormatInt(p.Version, 10)}
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
		return provider.Secret{}, fmt.Errorf("parameterstore get %q: %w", name, awsp.Wrap(provider.ErrUnavailable, "EmptyResponse", nil))
	}
	return secretOf(out.Parameter), nil
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
	for start := 0; start < len(sels); start += maxBatch {
		chunk := sels[start:min(start+maxBatch, len(sels))]
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

// getParameters reads up to 10 selectors in one call, decrypted.
func (c *Client) getParameters(ctx context.Context, sels []string) (map[string]provider.Result, error) {
	out, err := c.api.GetParameters(ctx, &ssm.GetParametersInput{Names: sels, WithDecryption: awssdk.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("parameterstore batch get of %d parameters: %w", len(sels), awsp.MapError(err))
	}
	// Answers carry the bare name (never the ARN that may have been asked for) and the
	// selector suffix; index both spellings.
	byKey := make(map[string]*ssmtypes.Parameter, 2*len(out.Parameters))
	for i := range out.Parameters {
		p := &out.Parameters[i]
		suffix := awssdk.ToString(p.Selector)
		byKey[awssdk.ToString(p.Name)+suffix] = p
		if p.ARN != nil {
			byKey[*p.ARN+suffix] = p
		}
	}
	invalid := make(map[string]bool, len(out.InvalidParameters))
	for _, n := range out.InvalidParameters {
		invalid[n] = true
	}
	got := make(map[string]provider.Result, len(sels))
	for _, sel := range sels {
		switch p := byKey[sel]; {
		case p != nil:
			got[sel] = provider.Result{Secret: secretOf(p)}
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
			return nil, fmt.Errorf("parameterstore find: name regexp does not compile: %w", provider.ErrInvalid)
		}
	}
	path := findPath(q.Path)
	match := func(name string) bool { return re == nil || re.MatchString(name) }
	if len(q.Tags) == 0 {
		return c.findByPath(ctx, path, match)
	}
	return c.findByTags(ctx, path, q.Tags, match)
}

func (c *Client) findByPath(ctx context.Context, path string, match func(string) bool) (map[string]provider.Secret, error) {
	found := map[string]provider.Secret{}
	in := &ssm.GetParametersByPathInput{
		Path: awssdk.String(path), Recursive: awssdk.Bool(true), WithDecryption: awssdk.Bool(true),
		MaxResults: awssdk.Int32(maxBatch),
	}
	for {
		out, err := c.api.GetParametersByPath(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("parameterstore find %q: %w", path, awsp.MapError(err))
		}
		for i := range out.Parameters {
			p := &out.Parameters[i]
			if name := awssdk.ToString(p.Name); match(name) {
				if len(found) == findMaxKeys {
					return nil, fmt.Errorf("parameterstore find %q: more than %d parameters match: %w", path, findMaxKeys, provider.ErrInvalid)
				}
				found[name] = secretOf(p)
			}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			return found, nil
		}
		in.NextToken = out.NextToken
	}
}

func (c *Client) findByTags(ctx context.Context, path string, tags map[string]string, match func(string) bool) (map[string]provider.Secret, error) {
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
	in := &ssm.DescribeParametersInput{ParameterFilters: filters, MaxResults: awssdk.Int32(describePage)}
	for {
		out, err := c.api.DescribeParameters(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("parameterstore find %q: describe: %w", path, awsp.MapError(err))
		}
		for _, m := range out.Parameters {
			if name := awssdk.ToString(m.Name); match(name) {
				if len(names) == findMaxKeys {
					return nil, fmt.Errorf("parameterstore find %q: more than %d parameters match: %w", path, findMaxKeys, provider.ErrInvalid)
				}
				names = append(names, name)
			}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		in.NextToken = out.NextToken
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
				if provider.Classify(r.Err) == provider.ErrNotFound {
					continue // deleted since it was described
				}
				return nil, fmt.Errorf("parameterstore find %q: %w", path, r.Err)
			}
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
