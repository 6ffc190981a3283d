package awsemu

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Staging labels Secrets Manager moves by itself.
const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
)

// maxSecretVersions is how many versions a secret keeps; older versions without a
// staging label are removed first, as AWS does.
const maxSecretVersions = 100

type smSecret struct {
	seq         int64
	name, arn   string
	description string
	kmsKeyID    string
	tags        map[string]string
	versions    map[string]*smVersion
	order       []string          // version ids, oldest first
	stages      map[string]string // staging label -> version id
	created     time.Time
	changed     time.Time
	accessed    time.Time
	deletion    time.Time // scheduled deletion; zero when not scheduled
}

type smVersion struct {
	id       string
	str      *string
	bin      []byte
	created  time.Time
	accessed time.Time
}

func (sec *smSecret) stagesOf(vid string) []string {
	var out []string
	for st, v := range sec.stages {
		if v == vid {
			out = append(out, st)
		}
	}
	sort.Strings(out)
	return out
}

func (sec *smSecret) versionsToStages() map[string][]string {
	out := map[string][]string{}
	for st, v := range sec.stages {
		out[v] = append(out[v], st)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// moveStage attaches stage to vid, taking it from whichever version had it; moving
// AWSCURRENT hands AWSPREVIOUS to the version that was current.
func (sec *smSecret) moveStage(stage, vid string) {
	if stage == stageCurrent {
		if old, ok := sec.stages[stageCurrent]; ok && old != vid {
			sec.stages[stagePrevious] = old
		}
	}
	sec.stages[stage] = vid
}

func (sec *smSecret) prune() {
	for len(sec.order) > maxSecretVersions {
		removed := false
		for i, vid := range sec.order {
			if len(sec.stagesOf(vid)) == 0 {
				delete(sec.versions, vid)
				sec.order = append(sec.order[:i:i], sec.order[i+1:]...)
				removed = true
				break
			}
		}
		if !removed {
			return
		}
	}
}

var (
	smNameRe      = regexp.MustCompile(`^[a-zA-Z0-9/_+=.@-]+$`)
	smFilterValRe = regexp.MustCompile(`^!?[a-zA-Z0-9 :_@/+=.\-!]*$`)
)

var (
	errSecretNotFound = func() *apiError {
		return errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	}
	errSecretDeleted = func() *apiError {
		return errf("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
	}
)

func validationErr(format string, args ...any) *apiError {
	return errf("ValidationException", "1 validation error detected: "+format, args...)
}

// resolveSecret finds a secret by name, full ARN or partial ARN (the ARN without the
// random suffix). Caller holds s.mu.
func (s *Server) resolveSecret(id string) (*smSecret, *apiError) {
	if id == "" {
		return nil, validationErr("Value null at 'secretId' failed to satisfy constraint: Member must not be null")
	}
	if len(id) > 2048 {
		return nil, validationErr("Value at 'secretId' failed to satisfy constraint: Member must have length less than or equal to 2048")
	}
	sec := s.secrets[id]
	if sec == nil && strings.HasPrefix(id, "arn:") {
		if i := strings.Index(id, ":secret:"); i >= 0 {
			rest := id[i+len(":secret:"):]
			// A full ARN ends with "-" and six random characters.
			if n := len(rest); n > 7 && rest[n-7] == '-' {
				if c := s.secrets[rest[:n-7]]; c != nil && c.arn == id {
					sec = c
				}
			}
			if sec == nil {
				sec = s.secrets[rest] // partial ARN
			}
		}
	}
	if sec == nil {
		return nil, errSecretNotFound()
	}
	if !sec.deletion.IsZero() && !s.opts.Now().Before(sec.deletion) {
		delete(s.secrets, sec.name)
		return nil, errSecretNotFound()
	}
	return sec, nil
}

func (s *Server) secretARN(name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.opts.Region, s.opts.AccountID, name, randString(6, alnum))
}

func validateSecretValue(str *string, bin []byte, required bool) *apiError {
	if str != nil && bin != nil {
		return errf("InvalidParameterException", "You can't specify both a binary secret value and a string secret value in the same secret.")
	}
	if required && str == nil && bin == nil {
		return errf("InvalidParameterException", "You must provide either SecretString or SecretBinary.")
	}
	if str != nil && len(*str) > 65536 {
		return validationErr("Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536")
	}
	if len(bin) > 65536 {
		return validationErr("Value at 'secretBinary' failed to satisfy constraint: Member must have length less than or equal to 65536")
	}
	return nil
}

func validateToken(tok *string) *apiError {
	if tok != nil && (len(*tok) < 32 || len(*tok) > 64) {
		return validationErr("Value at 'clientRequestToken' failed to satisfy constraint: Member must have length between 32 and 64")
	}
	return nil
}

func validateTags(existing map[string]string, tags []Tag) *apiError {
	n := len(existing)
	for _, t := range tags {
		if len(t.Key) < 1 || len(t.Key) > 128 {
			return validationErr("Value at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128")
		}
		if len(t.Value) > 256 {
			return validationErr("Value at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256")
		}
		if _, ok := existing[t.Key]; !ok {
			n++
		}
	}
	if n > 50 {
		return errf("ValidationException", "Number of tags exceeds the limit of 50.")
	}
	return nil
}

// addSecretVersion stores a new version and moves stages to it. Caller holds s.mu.
func (s *Server) addSecretVersion(sec *smSecret, vid string, str *string, bin []byte, stages []string) {
	now := s.opts.Now()
	v := &smVersion{id: vid, created: now}
	if str != nil {
		c := *str
		v.str = &c
	}
	if bin != nil {
		v.bin = append([]byte{}, bin...)
	}
	sec.versions[vid] = v
	sec.order = append(sec.order, vid)
	for _, st := range stages {
		sec.moveStage(st, vid)
	}
	sec.changed = now
	sec.prune()
}

// ---- requests and responses

type smFilter struct {
	Key    string   `json:"Key"`
	Values []string `json:"Values"`
}

type createSecretIn struct {
	Name               string
	ClientRequestToken *string
	Description        string
	KmsKeyId           string
	SecretString       *string
	SecretBinary       []byte
	Tags               []Tag
}

type secretRef struct {
	ARN  string `json:"ARN"`
	Name string `json:"Name"`
}

type createSecretOut struct {
	ARN       string `json:"ARN"`
	Name      string `json:"Name"`
	VersionId string `json:"VersionId,omitempty"`
}

type putSecretValueIn struct {
	SecretId           string
	ClientRequestToken *string
	SecretString       *string
	SecretBinary       []byte
	VersionStages      []string
}

type putSecretValueOut struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionId     string   `json:"VersionId"`
	VersionStages []string `json:"VersionStages"`
}

type getSecretValueIn struct {
	SecretId     string
	VersionId    *string
	VersionStage *string
}

type secretValue struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionId     string   `json:"VersionId"`
	SecretString  *string  `json:"SecretString,omitempty"`
	SecretBinary  []byte   `json:"SecretBinary,omitempty"`
	VersionStages []string `json:"VersionStages"`
	CreatedDate   *epoch   `json:"CreatedDate,omitempty"`
}

type batchGetIn struct {
	SecretIdList []string
	Filters      []smFilter
	MaxResults   *int
	NextToken    *string
}

type batchError struct {
	SecretId  string `json:"SecretId"`
	ErrorCode string `json:"ErrorCode"`
	Message   string `json:"Message"`
}

type batchGetOut struct {
	SecretValues []secretValue `json:"SecretValues"`
	Errors       []batchError  `json:"Errors"`
	NextToken    string        `json:"NextToken,omitempty"`
}

type listSecretsIn struct {
	Filters                []smFilter
	IncludePlannedDeletion bool
	MaxResults             *int
	NextToken              *string
	SortBy                 string
	SortOrder              string
}

type secretEntry struct {
	ARN                    string              `json:"ARN"`
	Name                   string              `json:"Name"`
	Description            string              `json:"Description,omitempty"`
	KmsKeyId               string              `json:"KmsKeyId,omitempty"`
	RotationEnabled        *bool               `json:"RotationEnabled,omitempty"`
	Tags                   []Tag               `json:"Tags,omitempty"`
	SecretVersionsToStages map[string][]string `json:"SecretVersionsToStages,omitempty"`
	VersionIdsToStages     map[string][]string `json:"VersionIdsToStages,omitempty"`
	CreatedDate            *epoch              `json:"CreatedDate,omitempty"`
	LastChangedDate        *epoch              `json:"LastChangedDate,omitempty"`
	LastAccessedDate       *epoch              `json:"LastAccessedDate,omitempty"`
	DeletedDate            *epoch              `json:"DeletedDate,omitempty"`
}

type listSecretsOut struct {
	SecretList []secretEntry `json:"SecretList"`
	NextToken  string        `json:"NextToken,omitempty"`
}

type secretIdIn struct {
	SecretId string
}

type updateStageIn struct {
	SecretId            string
	VersionStage        string
	MoveToVersionId     *string
	RemoveFromVersionId *string
}

type tagResourceIn struct {
	SecretId string
	Tags     []Tag
	TagKeys  []string
}

type deleteSecretIn struct {
	SecretId                   string
	ForceDeleteWithoutRecovery *bool
	RecoveryWindowInDays       *int64
}

type deleteSecretOut struct {
	ARN          string `json:"ARN"`
	Name         string `json:"Name"`
	DeletionDate *epoch `json:"DeletionDate,omitempty"`
}

type listVersionsIn struct {
	SecretId          string
	IncludeDeprecated bool
	MaxResults        *int
	NextToken         *string
}

type versionEntry struct {
	VersionId        string   `json:"VersionId"`
	VersionStages    []string `json:"VersionStages,omitempty"`
	CreatedDate      *epoch   `json:"CreatedDate,omitempty"`
	LastAccessedDate *epoch   `json:"LastAccessedDate,omitempty"`
}

type listVersionsOut struct {
	ARN       string         `json:"ARN"`
	Name      string         `json:"Name"`
	Versions  []versionEntry `json:"Versions"`
	NextToken string         `json:"NextToken,omitempty"`
}

// ---- dispatch

func (s *Server) dispatchSM(op string, body []byte) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case "CreateSecret":
		var in createSecretIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.smCreateSecret(in)
	case "PutSecretValue":
		var in putSecretValueIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.smPutSecretValue(in)
	case "GetSecretValue":
		var in getSecretValueIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.smGetSecretValue(in)
	case "BatchGetSecretValue":
		var in batchGetIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.smBatchGet(in)
	case "DescribeSecret":
		var in secretIdIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		sec, e := s.resolveSecret(in.SecretId)
		if e != nil {
			return nil, e
		}
		d := s.secretEntry(sec)
		d.VersionIdsToStages, d.SecretVersionsToStages = d.SecretVersionsToStages, nil
		d.RotationEnabled = new(bool)
		return d, nil
	case "ListSecrets":
		var in listSecretsIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.smListSecrets(in)
	case "ListSecretVersionIds":
		var in listVersionsIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.smListVersions(in)
	case "UpdateSecretVersionStage":
		var in updateStageIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.smUpdateStage(in)
	case "TagResource", "UntagResource":
		var in tagResourceIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		sec, e := s.resolveSecret(in.SecretId)
		if e != nil {
			return nil, e
		}
		if !sec.deletion.IsZero() {
			return nil, errSecretDeleted()
		}
		if op == "UntagResource" {
			for _, k := range in.TagKeys {
				delete(sec.tags, k)
			}
			return struct{}{}, nil
		}
		if e := validateTags(sec.tags, in.Tags); e != nil {
			return nil, e
		}
		for _, t := range in.Tags {
			sec.tags[t.Key] = t.Value
		}
		return struct{}{}, nil
	case "DeleteSecret":
		var in deleteSecretIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.smDeleteSecret(in)
	case "RestoreSecret":
		var in secretIdIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		sec, e := s.resolveSecret(in.SecretId)
		if e != nil {
			return nil, e
		}
		sec.deletion = time.Time{}
		return secretRef{ARN: sec.arn, Name: sec.name}, nil
	}
	return nil, errf("UnknownOperationException", "Unknown operation %s", op)
}

func (s *Server) smCreateSecret(in createSecretIn) (any, *apiError) {
	if in.Name == "" {
		return nil, validationErr("Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	if len(in.Name) > 512 || !smNameRe.MatchString(in.Name) {
		return nil, errf("ValidationException", "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	if e := validateSecretValue(in.SecretString, in.SecretBinary, false); e != nil {
		return nil, e
	}
	if e := validateToken(in.ClientRequestToken); e != nil {
		return nil, e
	}
	if e := validateTags(nil, in.Tags); e != nil {
		return nil, e
	}
	if old, ok := s.secrets[in.Name]; ok {
		if !old.deletion.IsZero() && s.opts.Now().Before(old.deletion) {
			return nil, errf("InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		if old.deletion.IsZero() {
			// Idempotent retry of the same request: same token, same value.
			if in.ClientRequestToken != nil {
				if v := old.versions[*in.ClientRequestToken]; v != nil && sameValue(v, in.SecretString, in.SecretBinary) {
					return createSecretOut{ARN: old.arn, Name: old.name, VersionId: v.id}, nil
				}
			}
			return nil, errf("ResourceExistsException", "The operation failed because the secret %s already exists.", in.Name)
		}
		delete(s.secrets, in.Name)
	}
	now := s.opts.Now()
	s.seq++
	sec := &smSecret{
		seq: s.seq, name: in.Name, arn: s.secretARN(in.Name),
		description: in.Description, kmsKeyID: in.KmsKeyId,
		tags: map[string]string{}, versions: map[string]*smVersion{}, stages: map[string]string{},
		created: now, changed: now,
	}
	for _, t := range in.Tags {
		sec.tags[t.Key] = t.Value
	}
	s.secrets[in.Name] = sec
	out := createSecretOut{ARN: sec.arn, Name: sec.name}
	if in.SecretString != nil || in.SecretBinary != nil {
		vid := newUUID()
		if in.ClientRequestToken != nil {
			vid = *in.ClientRequestToken
		}
		s.addSecretVersion(sec, vid, in.SecretString, in.SecretBinary, []string{stageCurrent})
		out.VersionId = vid
	}
	return out, nil
}

func sameValue(v *smVersion, str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) {
		return false
	}
	if str != nil && *v.str != *str {
		return false
	}
	return bytes.Equal(v.bin, bin)
}

func (s *Server) smPutSecretValue(in putSecretValueIn) (any, *apiError) {
	if e := validateSecretValue(in.SecretString, in.SecretBinary, true); e != nil {
		return nil, e
	}
	if e := validateToken(in.ClientRequestToken); e != nil {
		return nil, e
	}
	if len(in.VersionStages) > 20 {
		return nil, validationErr("Value at 'versionStages' failed to satisfy constraint: Member must have length less than or equal to 20")
	}
	sec, e := s.resolveSecret(in.SecretId)
	if e != nil {
		return nil, e
	}
	if !sec.deletion.IsZero() {
		return nil, errSecretDeleted()
	}
	vid := newUUID()
	if in.ClientRequestToken != nil {
		vid = *in.ClientRequestToken
	}
	if v, ok := sec.versions[vid]; ok {
		if !sameValue(v, in.SecretString, in.SecretBinary) {
			return nil, errf("ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
		}
		return putSecretValueOut{ARN: sec.arn, Name: sec.name, VersionId: vid, VersionStages: sec.stagesOf(vid)}, nil
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{stageCurrent}
	}
	s.addSecretVersion(sec, vid, in.SecretString, in.SecretBinary, stages)
	return putSecretValueOut{ARN: sec.arn, Name: sec.name, VersionId: vid, VersionStages: sec.stagesOf(vid)}, nil
}

// secretVersion picks the version GetSecretValue reads. Caller holds s.mu.
func (s *Server) secretVersion(sec *smSecret, versionID, stage *string) (*smVersion, *apiError) {
	if !sec.deletion.IsZero() {
		return nil, errSecretDeleted()
	}
	if versionID != nil {
		v := sec.versions[*versionID]
		if v == nil {
			return nil, errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s", *versionID)
		}
		if stage != nil && sec.stages[*stage] != v.id {
			return nil, errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s and staging label: %s", *versionID, *stage)
		}
		return v, nil
	}
	st := stageCurrent
	if stage != nil {
		st = *stage
	}
	vid, ok := sec.stages[st]
	if !ok {
		return nil, errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: %s", st)
	}
	return sec.versions[vid], nil
}

func (s *Server) readValue(sec *smSecret, v *smVersion) secretValue {
	now := s.opts.Now()
	day := now.UTC().Truncate(24 * time.Hour)
	sec.accessed, v.accessed = day, day
	out := secretValue{
		ARN: sec.arn, Name: sec.name, VersionId: v.id,
		VersionStages: sec.stagesOf(v.id), CreatedDate: ep(v.created),
	}
	if v.str != nil {
		c := *v.str
		out.SecretString = &c
	} else {
		out.SecretBinary = append([]byte{}, v.bin...)
	}
	return out
}

func (s *Server) smGetSecretValue(in getSecretValueIn) (any, *apiError) {
	if in.VersionId != nil && (len(*in.VersionId) < 32 || len(*in.VersionId) > 64) {
		return nil, validationErr("Value at 'versionId' failed to satisfy constraint: Member must have length between 32 and 64")
	}
	sec, e := s.resolveSecret(in.SecretId)
	if e != nil {
		return nil, e
	}
	v, e := s.secretVersion(sec, in.VersionId, in.VersionStage)
	if e != nil {
		return nil, e
	}
	return s.readValue(sec, v), nil
}

func (s *Server) smBatchGet(in batchGetIn) (any, *apiError) {
	if (len(in.SecretIdList) > 0) == (len(in.Filters) > 0) {
		return nil, errf("InvalidParameterException", "Either 'SecretIdList' or 'Filters' must be provided, but not both.")
	}
	out := batchGetOut{SecretValues: []secretValue{}, Errors: []batchError{}}
	if len(in.SecretIdList) > 0 {
		if len(in.SecretIdList) > 20 {
			return nil, validationErr("Value at 'secretIdList' failed to satisfy constraint: Member must have length less than or equal to 20")
		}
		if in.MaxResults != nil {
			return nil, errf("InvalidParameterException", "'MaxResults' is only valid with 'Filters'.")
		}
		for _, id := range in.SecretIdList {
			sec, e := s.resolveSecret(id)
			var v *smVersion
			if e == nil {
				v, e = s.secretVersion(sec, nil, nil)
			}
			if e != nil {
				out.Errors = append(out.Errors, batchError{SecretId: id, ErrorCode: e.code, Message: e.msg})
				continue
			}
			out.SecretValues = append(out.SecretValues, s.readValue(sec, v))
		}
		return out, nil
	}
	size, e := pageSize(in.MaxResults, 20)
	if e != nil {
		return nil, e
	}
	page, next, e := s.listSecretsPage("BatchGetSecretValue", in.Filters, false, "", "", size, in.NextToken)
	if e != nil {
		return nil, e
	}
	for _, sec := range page {
		v, e := s.secretVersion(sec, nil, nil)
		if e != nil {
			out.Errors = append(out.Errors, batchError{SecretId: sec.name, ErrorCode: e.code, Message: e.msg})
			continue
		}
		out.SecretValues = append(out.SecretValues, s.readValue(sec, v))
	}
	out.NextToken = next
	return out, nil
}

func (s *Server) secretEntry(sec *smSecret) secretEntry {
	e := secretEntry{
		ARN: sec.arn, Name: sec.name, Description: sec.description, KmsKeyId: sec.kmsKeyID,
		Tags:                   sortedTags(sec.tags),
		SecretVersionsToStages: sec.versionsToStages(),
		CreatedDate:            ep(sec.created), LastChangedDate: ep(sec.changed),
		LastAccessedDate: ep(sec.accessed), DeletedDate: ep(sec.deletion),
	}
	if len(e.Tags) == 0 {
		e.Tags = nil
	}
	return e
}

func (s *Server) smListSecrets(in listSecretsIn) (any, *apiError) {
	size, e := pageSize(in.MaxResults, 100)
	if e != nil {
		return nil, e
	}
	page, next, e := s.listSecretsPage("ListSecrets", in.Filters, in.IncludePlannedDeletion, in.SortBy, in.SortOrder, size, in.NextToken)
	if e != nil {
		return nil, e
	}
	out := listSecretsOut{SecretList: make([]secretEntry, 0, len(page)), NextToken: next}
	for _, sec := range page {
		out.SecretList = append(out.SecretList, s.secretEntry(sec))
	}
	return out, nil
}

// listSecretsPage filters, sorts and pages secrets. The NextToken is a cursor (the
// last returned sort key), so secrets created while paging do not shift pages.
func (s *Server) listSecretsPage(op string, filters []smFilter, includeDeleted bool, sortBy, sortOrder string, size int, token *string) ([]*smSecret, string, *apiError) {
	if e := validateSMFilters(filters); e != nil {
		return nil, "", e
	}
	switch sortBy {
	case "", "created-date", "name", "last-changed-date", "last-accessed-date":
	default:
		return nil, "", validationErr("Value '%s' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]", sortBy)
	}
	desc := false
	switch sortOrder {
	case "", "asc":
	case "desc":
		desc = true
	default:
		return nil, "", validationErr("Value '%s' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]", sortOrder)
	}
	key := func(sec *smSecret) string {
		switch sortBy {
		case "name":
			return sec.name
		case "last-changed-date":
			return fmt.Sprintf("%020d", sec.changed.UnixNano())
		case "last-accessed-date":
			return fmt.Sprintf("%020d", sec.accessed.UnixNano())
		}
		return ""
	}
	less := func(ak string, as int64, bk string, bs int64) bool {
		if ak != bk {
			return ak < bk
		}
		return as < bs
	}
	var cursor *pageToken
	if token != nil {
		t, ok := decodeToken(*token, op+"|"+sortBy+"|"+sortOrder)
		if !ok {
			return nil, "", errf("InvalidNextTokenException", "The NextToken value is invalid.")
		}
		cursor = &t
	}
	now := s.opts.Now()
	var all []*smSecret
	for _, sec := range s.secrets {
		if !sec.deletion.IsZero() {
			if !now.Before(sec.deletion) {
				delete(s.secrets, sec.name)
				continue
			}
			if !includeDeleted {
				continue
			}
		}
		if cursor != nil {
			k := key(sec)
			after := less(cursor.Key, cursor.Seq, k, sec.seq)
			if desc {
				after = less(k, sec.seq, cursor.Key, cursor.Seq)
			}
			if !after {
				continue
			}
		}
		if matchSMFilters(sec, filters) {
			all = append(all, sec)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if desc {
			return less(key(all[j]), all[j].seq, key(all[i]), all[i].seq)
		}
		return less(key(all[i]), all[i].seq, key(all[j]), all[j].seq)
	})
	next := ""
	if len(all) > size {
		all = all[:size]
		last := all[size-1]
		next = encodeToken(pageToken{Op: op + "|" + sortBy + "|" + sortOrder, Key: key(last), Seq: last.seq})
	}
	return all, next, nil
}

var smFilterKeys = map[string]bool{"description": true, "name": true, "tag-key": true, "tag-value": true, "primary-region": true, "owning-service": true, "all": true}

func validateSMFilters(filters []smFilter) *apiError {
	if len(filters) > 10 {
		return validationErr("Value at 'filters' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	for i, f := range filters {
		if !smFilterKeys[f.Key] {
			return validationErr("Value '%s' at 'filters.%d.member.key' failed to satisfy constraint: Member must satisfy enum value set: [all, name, tag-key, description, tag-value, primary-region, owning-service]", f.Key, i+1)
		}
		if len(f.Values) < 1 || len(f.Values) > 10 {
			return validationErr("Value at 'filters.%d.member.values' failed to satisfy constraint: Member must have length between 1 and 10", i+1)
		}
		for _, v := range f.Values {
			if len(v) > 512 || !smFilterValRe.MatchString(v) {
				return validationErr("Value at 'filters.%d.member.values' failed to satisfy constraint: Member must satisfy regular expression pattern: ^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$", i+1)
			}
		}
	}
	return nil
}

// matchSMFilters applies ListSecrets filters: filters are ANDed; inside a filter a
// secret matches any positive value and none of the negated ("!") ones.
func matchSMFilters(sec *smSecret, filters []smFilter) bool {
	for _, f := range filters {
		var pos bool
		var anyPos bool
		for _, v := range f.Values {
			neg := strings.HasPrefix(v, "!")
			if neg {
				if smFilterMatch(sec, f.Key, v[1:]) {
					return false
				}
				continue
			}
			anyPos = true
			if !pos && smFilterMatch(sec, f.Key, v) {
				pos = true
			}
		}
		if anyPos && !pos {
			return false
		}
	}
	return true
}

func smFilterMatch(sec *smSecret, key, v string) bool {
	switch key {
	case "name":
		return strings.HasPrefix(sec.name, v)
	case "description":
		return hasPrefixFold(sec.description, v)
	case "tag-key":
		for k := range sec.tags {
			if strings.HasPrefix(k, v) {
				return true
			}
		}
	case "tag-value":
		for _, tv := range sec.tags {
			if strings.HasPrefix(tv, v) {
				return true
			}
		}
	case "all":
		for _, word := range strings.Fields(v) {
			if !smAnyAttrMatch(sec, word) {
				return false
			}
		}
		return true
	}
	return false
}

// smAnyAttrMatch: word is a case-insensitive prefix of an attribute or of one of the
// attribute's words (split at / - _ . and spaces).
func smAnyAttrMatch(sec *smSecret, word string) bool {
	attrs := []string{sec.name, sec.description}
	for k, v := range sec.tags {
		attrs = append(attrs, k, v)
	}
	for _, a := range attrs {
		if hasPrefixFold(a, word) {
			return true
		}
		for _, part := range strings.FieldsFunc(a, func(r rune) bool { return strings.ContainsRune("/-_. ", r) }) {
			if hasPrefixFold(part, word) {
				return true
			}
		}
	}
	return false
}

func (s *Server) smListVersions(in listVersionsIn) (any, *apiError) {
	size, e := pageSize(in.MaxResults, 100)
	if e != nil {
		return nil, e
	}
	sec, e := s.resolveSecret(in.SecretId)
	if e != nil {
		return nil, e
	}
	start := 0
	if in.NextToken != nil {
		t, ok := decodeToken(*in.NextToken, "ListSecretVersionIds")
		if !ok {
			return nil, errf("InvalidNextTokenException", "The NextToken value is invalid.")
		}
		start = int(t.Seq)
	}
	out := listVersionsOut{ARN: sec.arn, Name: sec.name, Versions: []versionEntry{}}
	// Newest first, as the console shows them.
	var vids []string
	for i := len(sec.order) - 1; i >= 0; i-- {
		vid := sec.order[i]
		if !in.IncludeDeprecated && len(sec.stagesOf(vid)) == 0 {
			continue
		}
		vids = append(vids, vid)
	}
	for i := start; i < len(vids); i++ {
		if len(out.Versions) == size {
			out.NextToken = encodeToken(pageToken{Op: "ListSecretVersionIds", Seq: int64(i)})
			break
		}
		v := sec.versions[vids[i]]
		out.Versions = append(out.Versions, versionEntry{VersionId: v.id, VersionStages: sec.stagesOf(v.id), CreatedDate: ep(v.created), LastAccessedDate: ep(v.accessed)})
	}
	return out, nil
}

func (s *Server) smUpdateStage(in updateStageIn) (any, *apiError) {
	if in.VersionStage == "" || len(in.VersionStage) > 256 {
		return nil, validationErr("Value at 'versionStage' failed to satisfy constraint: Member must have length between 1 and 256")
	}
	sec, e := s.resolveSecret(in.SecretId)
	if e != nil {
		return nil, e
	}
	if !sec.deletion.IsZero() {
		return nil, errSecretDeleted()
	}
	holder, attached := sec.stages[in.VersionStage]
	if in.RemoveFromVersionId != nil {
		if _, ok := sec.versions[*in.RemoveFromVersionId]; !ok {
			return nil, errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s", *in.RemoveFromVersionId)
		}
		if !attached || holder != *in.RemoveFromVersionId {
			return nil, errf("InvalidParameterException", "The staging label %s is not attached to version %s.", in.VersionStage, *in.RemoveFromVersionId)
		}
	}
	if in.MoveToVersionId == nil {
		if in.RemoveFromVersionId == nil {
			return nil, errf("InvalidParameterException", "You must specify MoveToVersionId or RemoveFromVersionId.")
		}
		if in.VersionStage == stageCurrent {
			return nil, errf("InvalidParameterException", "You can't remove the staging label AWSCURRENT from a version; move it to another version instead.")
		}
		delete(sec.stages, in.VersionStage)
		return secretRef{ARN: sec.arn, Name: sec.name}, nil
	}
	if _, ok := sec.versions[*in.MoveToVersionId]; !ok {
		return nil, errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s", *in.MoveToVersionId)
	}
	if attached && holder != *in.MoveToVersionId && in.RemoveFromVersionId == nil {
		return nil, errf("InvalidParameterException", "The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", in.VersionStage, holder)
	}
	sec.moveStage(in.VersionStage, *in.MoveToVersionId)
	sec.changed = s.opts.Now()
	return secretRef{ARN: sec.arn, Name: sec.name}, nil
}

func (s *Server) smDeleteSecret(in deleteSecretIn) (any, *apiError) {
	force := in.ForceDeleteWithoutRecovery != nil && *in.ForceDeleteWithoutRecovery
	if force && in.RecoveryWindowInDays != nil {
		return nil, errf("InvalidParameterException", "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, errf("InvalidParameterException", "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	sec, e := s.resolveSecret(in.SecretId)
	if e != nil {
		return nil, e
	}
	now := s.opts.Now()
	if force {
		delete(s.secrets, sec.name)
		return deleteSecretOut{ARN: sec.arn, Name: sec.name, DeletionDate: ep(now)}, nil
	}
	if !sec.deletion.IsZero() {
		return nil, errf("InvalidRequestException", "You can't perform this operation on the secret because it was already scheduled for deletion.")
	}
	sec.deletion = now.Add(time.Duration(days) * 24 * time.Hour)
	return deleteSecretOut{ARN: sec.arn, Name: sec.name, DeletionDate: ep(sec.deletion)}, nil
}

// seedSecret adds a secret, or a new AWSCURRENT version of an existing one.
func (s *Server) seedSecret(name string, str *string, bin []byte, tags map[string]string, description string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec, ok := s.secrets[name]; ok && sec.deletion.IsZero() {
		s.addSecretVersion(sec, newUUID(), str, bin, []string{stageCurrent})
		for k, v := range tags {
			sec.tags[k] = v
		}
		return nil
	}
	in := createSecretIn{Name: name, SecretString: str, SecretBinary: bin, Description: description}
	in.Tags = sortedTags(tags)
	if _, e := s.smCreateSecret(in); e != nil {
		return e
	}
	return nil
}

// pageSize validates a Secrets Manager MaxResults (1..limit) and defaults it to limit.
func pageSize(maxResults *int, limit int) (int, *apiError) {
	if maxResults == nil {
		return limit, nil
	}
	if *maxResults < 1 || *maxResults > limit {
		return 0, validationErr("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", *maxResults, limit)
	}
	return *maxResults, nil
}
