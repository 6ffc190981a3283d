// Package secretsmanager is the AWS Secrets Manager provider ("aws-secretsmanager").
// Reads go through GetSecretValue, batches through BatchGetSecretValue (20 ids a
// call) and find through ListSecrets then BatchGetSecretValue.
package secretsmanager

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
)

// Name is the provider's registry name.
const Name = "aws-secretsmanager"

const (
	// maxBatch is BatchGetSecretValue's SecretIdList limit.
	maxBatch = 20
	// listPage is ListSecrets' largest page.
	listPage = 100
	// findMaxKeys bounds what one find may return (every value is held in memory).
	findMaxKeys = 10000
)

// smAPI is the part of the Secrets Manager client this provider uses.
type smAPI interface {
	GetSecretValue(ctx context.Context, in *sm.GetSecretValueInput, optFns ...func(*sm.Options)) (*sm.GetSecretValueOutput, error)
	BatchGetSecretValue(ctx context.Context, in *sm.BatchGetSecretValueInput, optFns ...func(*sm.Options)) (*sm.BatchGetSecretValueOutput, error)
	ListSecrets(ctx context.Context, in *sm.ListSecretsInput, optFns ...func(*sm.Options)) (*sm.ListSecretsOutput, error)
}

// New returns the provider with production settings.
func New() provider.Provider { return NewWithOptions(awsp.Options{}) }

// NewWithOptions returns the provider with tuned shared settings (tests: short
// backoff; metrics: an observer).
func NewWithOptions(opts awsp.Options) provider.Provider {
	return awsp.NewProvider(Name, v1alpha1.AWSServiceSecretsManager, opts, func(cfg awssdk.Config) provider.Client {
		return &Client{api: sm.NewFromConfig(cfg)}
	})
}

// Client reads one account and region as one identity; safe for concurrent use.
type Client struct{ api smAPI }

var (
	_ provider.Client      = (*Client)(nil)
	_ provider.BatchGetter = (*Client)(nil)
)

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// versionSelector reads Ref.Version: "uuid/<id>" or a canonical UUID is a VersionId,
// anything else a VersionStage (AWSCURRENT, AWSPREVIOUS, custom labels).
func versionSelector(version string) (versionID, stage *string) {
	switch {
	case version == "":
		return nil, nil
	case strings.HasPrefix(version, "uuid/"):
		return awssdk.String(strings.TrimPrefix(version, "uuid/")), nil
	case uuidRe.MatchString(version):
		return awssdk.String(version), nil
	}
	return nil, awssdk.String(version)
}

func secretOf(str *string, bin []byte, versionID *string) provider.Secret {
	s := provider.Secret{Version: awssdk.ToString(versionID)}
	if str != nil {
		s.Value = []byte(*str)
	} else {
		s.Value = bin
	}
	return s
}

// GetSecret reads one secret (name or ARN) at Ref.Version.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Secret, error) {
	if ref.Key == "" {
		return provider.Secret{}, fmt.Errorf("secretsmanager: key is empty: %w", provider.ErrInvalid)
	}
	in := &sm.GetSecretValueInput{SecretId: awssdk.String(ref.Key)}
	in.VersionId, in.VersionStage = versionSelector(ref.Version)
	out, err := c.api.GetSecretValue(ctx, in)
	if err != nil {
		if ref.Version != "" {
			return provider.Secret{}, fmt.Errorf("secretsmanager get %q version %q: %w", ref.Key, ref.Version, awsp.MapError(err))
		}
		return provider.Secret{}, fmt.Errorf("secretsmanager get %q: %w", ref.Key, awsp.MapError(err))
	}
	return secretOf(out.SecretString, out.SecretBinary, out.VersionId), nil
}

// MaxBatch is BatchGetSecretValue's id limit.
func (c *Client) MaxBatch() int { return maxBatch }

// MaxCallsPerSecond: BatchGetSecretValue's quota is 100 per second per account and
// region (not adjustable); one store takes at most half of it.
func (c *Client) MaxCallsPerSecond() float64 { return 50 }

// GetSecrets reads refs with BatchGetSecretValue, 20 ids a call. The call has no
// version field, so refs with a Version are read one by one with GetSecretValue.
// Per-secret failures land in the aligned Result.Err; the error is returned only
// when nothing could be read at all because every call failed.
func (c *Client) GetSecrets(ctx context.Context, refs []provider.Ref) ([]provider.Result, error) {
	res := make([]provider.Result, len(refs))
	byKey := map[string][]int{} // unversioned key -> indexes in refs
	var keys []string
	individual := 0
	for i, r := range refs {
		if r.Version != "" || r.Key == "" {
			res[i].Secret, res[i].Err = c.GetSecret(ctx, r)
			individual++
			continue
		}
		if _, seen := byKey[r.Key]; !seen {
			keys = append(keys, r.Key)
		}
		byKey[r.Key] = append(byKey[r.Key], i)
	}
	var callErr error
	calls, failed := 0, 0
	for start := 0; start < len(keys); start += maxBatch {
		chunk := keys[start:min(start+maxBatch, len(keys))]
		calls++
		got, err := c.batch(ctx, chunk)
		if err != nil {
			failed++
			callErr = err
		}
		for _, k := range chunk {
			r := provider.Result{Err: err}
			if err == nil {
				r = got[k]
			}
			for _, i := range byKey[k] {
				res[i] = r
			}
		}
	}
	if calls > 0 && failed == calls && individual == 0 {
		return nil, callErr
	}
	return res, nil
}

// batch reads ids (names or ARNs) in one BatchGetSecretValue call.
func (c *Client) batch(ctx context.Context, ids []string) (map[string]provider.Result, error) {
	out, err := c.api.BatchGetSecretValue(ctx, &sm.BatchGetSecretValueInput{SecretIdList: ids})
	if err != nil {
		return nil, fmt.Errorf("secretsmanager batch get of %d secrets: %w", len(ids), awsp.MapError(err))
	}
	byName := make(map[string]*smtypes.SecretValueEntry, len(out.SecretValues))
	byARN := make(map[string]*smtypes.SecretValueEntry, len(out.SecretValues))
	for i := range out.SecretValues {
		v := &out.SecretValues[i]
		byName[awssdk.ToString(v.Name)] = v
		byARN[awssdk.ToString(v.ARN)] = v
	}
	errs := make(map[string]smtypes.APIErrorType, len(out.Errors))
	for _, e := range out.Errors {
		errs[awssdk.ToString(e.SecretId)] = e
	}
	got := make(map[string]provider.Result, len(ids))
	for _, id := range ids {
		v := byARN[id]
		if v == nil {
			v = byName[id]
		}
		if v == nil && strings.HasPrefix(id, "arn:") {
			if i := strings.Index(id, ":secret:"); i >= 0 { // a partial ARN names the secret
				v = byName[id[i+len(":secret:"):]]
			}
		}
		switch e, failed := errs[id]; {
		case v != nil:
			got[id] = provider.Result{Secret: secretOf(v.SecretString, v.SecretBinary, v.VersionId)}
		case failed:
			got[id] = provider.Result{Err: fmt.Errorf("secretsmanager get %q: %w", id, awsp.CodeError(awssdk.ToString(e.ErrorCode), awssdk.ToString(e.Message)))}
		default:
			got[id] = provider.Result{Err: fmt.Errorf("secretsmanager get %q: %w", id, awsp.Wrap(provider.ErrUnavailable, "IncompleteBatchResponse", nil))}
		}
	}
	return got, nil
}

// filterValue is the character set ListSecrets accepts in filter values.
var filterValue = regexp.MustCompile(`^[a-zA-Z0-9 :_@/+=.\-!]{0,512}$`)

func serverFilterOK(v string) bool {
	return v != "" && !strings.HasPrefix(v, "!") && filterValue.MatchString(v)
}

// Find lists secrets whose name starts with q.Path (a trailing slash does not
// matter), that match q.NameRegexp (on the full name) and carry every tag in q.Tags,
// and reads their current values. Results are keyed by secret name.
//
// ListSecrets filters narrow the listing server-side (name prefix, tag keys and tag
// values); they are a superset (tag-key and tag-value are not paired, and values with
// characters the filter syntax refuses are left out), so every condition is checked
// again on the listed entries.
func (c *Client) Find(ctx context.Context, q provider.FindQuery) (map[string]provider.Secret, error) {
	var re *regexp.Regexp
	if q.NameRegexp != "" {
		var err error
		if re, err = regexp.Compile(q.NameRegexp); err != nil {
			return nil, fmt.Errorf("secretsmanager find: name regexp does not compile: %w", provider.ErrInvalid)
		}
	}
	prefix := strings.TrimSuffix(q.Path, "/")
	filters := findFilters(prefix, q.Tags)

	var arns []string
	names := map[string]string{} // ARN -> name
	in := &sm.ListSecretsInput{Filters: filters, MaxResults: awssdk.Int32(listPage)}
	for {
		out, err := c.api.ListSecrets(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("secretsmanager find %q: list: %w", q.Path, awsp.MapError(err))
		}
		for _, e := range out.SecretList {
			name := awssdk.ToString(e.Name)
			if !strings.HasPrefix(name, prefix) || (re != nil && !re.MatchString(name)) || !hasTags(e.Tags, q.Tags) {
				continue
			}
			if _, dup := names[awssdk.ToString(e.ARN)]; dup {
				continue
			}
			if len(arns) == findMaxKeys {
				return nil, fmt.Errorf("secretsmanager find %q: more than %d secrets match: %w", q.Path, findMaxKeys, provider.ErrInvalid)
			}
			arns = append(arns, awssdk.ToString(e.ARN))
			names[awssdk.ToString(e.ARN)] = name
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		in.NextToken = out.NextToken
	}

	found := make(map[string]provider.Secret, len(arns))
	for start := 0; start < len(arns); start += maxBatch {
		chunk := arns[start:min(start+maxBatch, len(arns))]
		got, err := c.batch(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("secretsmanager find %q: %w", q.Path, err)
		}
		for _, arn := range chunk {
			r := got[arn]
			if r.Err != nil {
				if provider.Classify(r.Err) == provider.ErrNotFound {
					continue // deleted since it was listed
				}
				return nil, fmt.Errorf("secretsmanager find %q: %w", q.Path, r.Err)
			}
			found[names[arn]] = r.Secret
		}
	}
	return found, nil
}

// findFilters builds at most 10 ListSecrets filters (the API's limit).
func findFilters(prefix string, tags map[string]string) []smtypes.Filter {
	var filters []smtypes.Filter
	if serverFilterOK(prefix) {
		filters = append(filters, smtypes.Filter{Key: smtypes.FilterNameStringTypeName, Values: []string{prefix}})
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(filters) < 10 && serverFilterOK(k) {
			filters = append(filters, smtypes.Filter{Key: smtypes.FilterNameStringTypeTagKey, Values: []string{k}})
		}
		if v := tags[k]; len(filters) < 10 && serverFilterOK(v) {
			filters = append(filters, smtypes.Filter{Key: smtypes.FilterNameStringTypeTagValue, Values: []string{v}})
		}
	}
	return filters
}

func hasTags(have []smtypes.Tag, want map[string]string) bool {
	if len(want) == 0 {
		return true
	}
	m := make(map[string]string, len(have))
	for _, t := range have {
		m[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Check lists one secret: a cheap call that needs valid credentials.
func (c *Client) Check(ctx context.Context) error {
	if _, err := c.api.ListSecrets(ctx, &sm.ListSecretsInput{MaxResults: awssdk.Int32(1)}); err != nil {
		return fmt.Errorf("secretsmanager ListSecrets: %w", awsp.MapError(err))
	}
	return nil
}

// Close has nothing to release: AWS credentials are not sessions.
func (c *Client) Close(context.Context) error { return nil }
