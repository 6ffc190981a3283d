// Package secretsmanager is the AWS Secrets Manager provider ("aws-secretsmanager").
// Reads go through GetSecretValue, batches through BatchGetSecretValue (20 ids a
// call) and find through ListSecrets then BatchGetSecretValue.
package secretsmanager

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

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
	return awsp.NewProvider(Name, v1alpha1.AWSServiceSecretsManager, opts, func(cfg awssdk.Config) provider.Client {
		return &Client{api: sm.NewFromConfig(cfg)}
	})
}

// Client reads one account and region as one identity; safe for concurrent use.
type Client struct {
	api smAPI
	// maxPages overrides awsp.MaxPages (tests).
	maxPages int
}

var (
	_ provider.Client      = (*Client)(nil)
	_ provider.BatchGetter = (*Client)(nil)
)

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// version is a parsed Ref.Version: at most one of ID (VersionId) and Stage
// (VersionStage) is set; neither means AWSCURRENT.
type version struct{ ID, Stage string }

// parseVersion reads Ref.Version: "uuid/<id>" or a canonical UUID is a VersionId,
// anything else a VersionStage (AWSCURRENT, AWSPREVIOUS, custom labels). It is pure
// and refuses what AWS would refuse or read differently, so a typo is an ErrInvalid
// naming the field, never a request that answers "not found":
//   - a VersionId has 32 to 64 printable ASCII characters ("uuid/" alone is refused);
//   - a stage has 1 to 256 printable ASCII characters and no "/" (a prefix such as
//     "UUID/" is a misspelt selector, not a label).
func parseVersion(v string) (version, error) {
	invalid := func(reason string) (version, error) {
		return version{}, fmt.Errorf("version %q: %s: %w", v, reason, awsp.Wrap(provider.ErrInvalid, "InvalidVersion", provider.ErrSpec))
	}
	switch {
	case v == "":
		return version{}, nil
	case len(v) >= len("uuid/") && strings.EqualFold(v[:len("uuid/")], "uuid/"):
		id := v[len("uuid/"):]
		switch {
		case id == "":
			return invalid(`"uuid/" without a version id`)
		case len(id) < 32 || len(id) > 64:
			return invalid("a version id has 32 to 64 characters")
		case !printable(id):
			return invalid("a version id has printable ASCII characters only")
		}
		return version{ID: id}, nil
	case uuidRe.MatchString(v):
		return version{ID: v}, nil
	case len(v) > 256:
		return invalid("a version stage has at most 256 characters")
	case !printable(v):
		return invalid("a version stage has printable ASCII characters only")
	case strings.Contains(v, "/"):
		return invalid(`a version stage has no "/" (a version id is written "uuid/<id>")`)
	}
	return version{Stage: v}, nil
}

// printable reports whether s has only printable ASCII characters other than space.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// secretOf is the value of one answer. An answer with neither SecretString nor
// SecretBinary did not say the secret is gone: it is ErrUnavailable (AWS always
// returns one of them; an empty body parses as an answer with neither).
func secretOf(str *string, bin []byte, versionID *string) (provider.Secret, error) {
	s := provider.Secret{Version: awssdk.ToString(versionID)}
	switch {
	case str != nil:
		s.Value = []byte(*str)
	case len(bin) > 0:
		s.Value = bin
	default:
		return provider.Secret{}, awsp.MissingValue("SecretString or SecretBinary")
	}
	return s, nil
}

// getInput validates ref and builds its request.
func getInput(ref provider.Ref) (*sm.GetSecretValueInput, error) {
	if ref.Key == "" {
		return nil, fmt.Errorf("secretsmanager: key is empty: %w", awsp.Wrap(provider.ErrInvalid, "EmptyKey", nil))
	}
	if err := awsp.CheckKey(ref.Key); err != nil {
		return nil, fmt.Errorf("secretsmanager get %q: %w", ref.Key, err)
	}
	v, err := parseVersion(ref.Version)
	if err != nil {
		return nil, fmt.Errorf("secretsmanager get %q: %w", ref.Key, err)
	}
	in := &sm.GetSecretValueInput{SecretId: awssdk.String(ref.Key)}
	if v.ID != "" {
		in.VersionId = awssdk.String(v.ID)
	}
	if v.Stage != "" {
		in.VersionStage = awssdk.String(v.Stage)
	}
	return in, nil
}

// GetSecret reads one secret (name or ARN) at Ref.Version.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Secret, error) {
	in, err := getInput(ref)
	if err != nil {
		return provider.Secret{}, err
	}
	what := fmt.Sprintf("secretsmanager get %q", ref.Key)
	if ref.Version != "" {
		what += fmt.Sprintf(" version %q", ref.Version)
	}
	out, err := c.api.GetSecretValue(ctx, in)
	if err != nil {
		return provider.Secret{}, fmt.Errorf("%s: %w", what, awsp.MapError(err))
	}
	sec, err := secretOf(out.SecretString, out.SecretBinary, out.VersionId)
	if err != nil {
		return provider.Secret{}, fmt.Errorf("%s: %w", what, err)
	}
	return sec, nil
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
		if err := awsp.CheckKey(r.Key); err != nil {
			res[i].Err = fmt.Errorf("secretsmanager get %q: %w", r.Key, err)
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

// batch reads ids (names or ARNs, already checked) in one BatchGetSecretValue call.
// Only an Errors entry with ResourceNotFoundException makes an id ErrNotFound; an id
// the answer does not mention, or mentions without a value, is ErrUnavailable.
func (c *Client) batch(ctx context.Context, ids []string) (map[string]provider.Result, error) {
	out, err := c.api.BatchGetSecretValue(ctx, &sm.BatchGetSecretValueInput{SecretIdList: ids})
	if err != nil {
		return nil, fmt.Errorf("secretsmanager batch get of %d secrets: %w", len(ids), awsp.MapManyError(err))
	}
	byName := make(map[string]*smtypes.SecretValueEntry, len(out.SecretValues))
	byARN := make(map[string]*smtypes.SecretValueEntry, len(out.SecretValues))
	for i := range out.SecretValues {
		v := &out.SecretValues[i]
		if v.Name != nil {
			byName[*v.Name] = v
		}
		if v.ARN != nil {
			byARN[*v.ARN] = v
		}
	}
	errs := make(map[string]smtypes.APIErrorType, len(out.Errors))
	for _, e := range out.Errors {
		if e.SecretId != nil {
			errs[*e.SecretId] = e
		}
	}
	got := make(map[string]provider.Result, len(ids))
	for _, id := range ids {
		v := lookup(id, byARN, byName)
		switch e, failed := errs[id]; {
		case v != nil:
			sec, err := secretOf(v.SecretString, v.SecretBinary, v.VersionId)
			if err != nil {
				err = fmt.Errorf("secretsmanager get %q: %w", id, err)
			}
			got[id] = provider.Result{Secret: sec, Err: err}
		case failed:
			got[id] = provider.Result{Err: fmt.Errorf("secretsmanager get %q: %w", id, awsp.CodeError(awssdk.ToString(e.ErrorCode), awssdk.ToString(e.Message)))}
		default:
			got[id] = provider.Result{Err: fmt.Errorf("secretsmanager get %q: %w", id, awsp.Wrap(provider.ErrUnavailable, "IncompleteBatchResponse", nil))}
		}
	}
	return got, nil
}

// lookup finds the answer for id: by ARN, by name, by the name a partial ARN ends
// with, and, only for answers that carry no ARN (emulators omit it), by the name a
// full ARN ends with once its random "-XXXXXX" suffix is dropped.
func lookup(id string, byARN, byName map[string]*smtypes.SecretValueEntry) *smtypes.SecretValueEntry {
	if v := byARN[id]; v != nil {
		return v
	}
	if v := byName[id]; v != nil {
		return v
	}
	i := strings.Index(id, ":secret:")
	if !strings.HasPrefix(id, "arn:") || i < 0 {
		return nil
	}
	rest := id[i+len(":secret:"):]
	if v := byName[rest]; v != nil {
		return v
	}
	if n := len(rest) - len("-XXXXXX"); n > 0 && rest[n] == '-' {
		if v := byName[rest[:n]]; v != nil && v.ARN == nil {
			return v
		}
	}
	return nil
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
			return nil, fmt.Errorf("secretsmanager find: name regexp does not compile: %w", awsp.Wrap(provider.ErrInvalid, "InvalidRegexp", nil))
		}
	}
	if err := awsp.CheckFindPath(q.Path); err != nil {
		return nil, fmt.Errorf("secretsmanager find %q: path: %w", q.Path, err)
	}
	prefix := strings.TrimSuffix(q.Path, "/")
	filters := findFilters(prefix, q.Tags)

	var ids []string             // ARNs (names when the listing omits ARNs)
	names := map[string]string{} // id -> name
	in := &sm.ListSecretsInput{Filters: filters, MaxResults: awssdk.Int32(listPage)}
	pages := awsp.Pages{Max: c.maxPages}
	for {
		out, err := c.api.ListSecrets(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("secretsmanager find %q: list: %w", q.Path, awsp.MapManyError(err))
		}
		for _, e := range out.SecretList {
			if e.Name == nil {
				return nil, fmt.Errorf("secretsmanager find %q: list: %w", q.Path, awsp.Wrap(provider.ErrUnavailable, "MalformedResponse", errors.New("entry without Name")))
			}
			name := *e.Name
			if !strings.HasPrefix(name, prefix) || (re != nil && !re.MatchString(name)) || !hasTags(e.Tags, q.Tags) {
				continue
			}
			id := name
			if e.ARN != nil {
				id = *e.ARN
			}
			if _, dup := names[id]; dup {
				continue
			}
			// The name becomes a key the engine checks and writes, and the id a
			// request: neither may be read two ways. Not quoted: it is backend content.
			if err := awsp.CheckKey(name); err != nil {
				return nil, fmt.Errorf("secretsmanager find %q: a listed name: %w", q.Path, err)
			}
			if err := awsp.CheckKey(id); err != nil {
				return nil, fmt.Errorf("secretsmanager find %q: a listed ARN: %w", q.Path, err)
			}
			if len(ids) == findMaxKeys {
				return nil, fmt.Errorf("secretsmanager find %q: more than %d secrets match: %w", q.Path, findMaxKeys, awsp.Wrap(provider.ErrInvalid, "TooManyResults", nil))
			}
			ids = append(ids, id)
			names[id] = name
		}
		more, err := pages.Next(out.NextToken)
		if err != nil {
			return nil, fmt.Errorf("secretsmanager find %q: list: %w", q.Path, err)
		}
		if !more {
			break
		}
		in.NextToken = out.NextToken
	}

	if q.Allowed != nil {
		for _, id := range ids {
			if !q.Allowed(names[id]) {
				// Refused before any value is read; the name came from the backend.
				return nil, fmt.Errorf("secretsmanager find %q: a secret found is not allowed: %w", q.Path, awsp.Wrap(provider.ErrNotAllowed, "", nil))
			}
		}
	}
	found := make(map[string]provider.Secret, len(ids))
	for start := 0; start < len(ids); start += maxBatch {
		chunk := ids[start:min(start+maxBatch, len(ids))]
		got, err := c.batch(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("secretsmanager find %q: %w", q.Path, err)
		}
		for _, id := range chunk {
			r := got[id]
			if r.Err != nil {
				if errors.Is(provider.Classify(r.Err), provider.ErrNotFound) {
					continue // deleted since it was listed
				}
				return nil, fmt.Errorf("secretsmanager find %q: %w", q.Path, r.Err)
			}
			r.Secret.Key = names[id]
			found[names[id]] = r.Secret
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
