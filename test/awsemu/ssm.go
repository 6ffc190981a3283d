package awsemu

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxParamVersions is the SSM version limit; the oldest version is dropped on the
// next write unless it carries a label.
const maxParamVersions = 100

type ssmParam struct {
	seq      int64
	name     string
	versions []*ssmVersion // ascending
	next     int64         // next version number
	tags     map[string]string
}

type ssmVersion struct {
	version        int64
	typ, value     string
	description    string
	keyID          string
	allowedPattern string
	tier, dataType string
	labels         []string
	modified       time.Time
	user           string
}

func (p *ssmParam) latest() *ssmVersion { return p.versions[len(p.versions)-1] }

func (p *ssmParam) version(n int64) *ssmVersion {
	for _, v := range p.versions {
		if v.version == n {
			return v
		}
	}
	return nil
}

func (p *ssmParam) labeled(label string) *ssmVersion {
	for _, v := range p.versions {
		for _, l := range v.labels {
			if l == label {
				return v
			}
		}
	}
	return nil
}

var (
	ssmNameRe  = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)
	ssmLabelRe = regexp.MustCompile(`^[a-zA-Z0-9_.\-]+$`)
	ssmKeyRe   = regexp.MustCompile(`^(tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType)$`)
	digitsRe   = regexp.MustCompile(`^[0-9]+$`)
)

func errParamNotFound(name string) *apiError {
	return errf("ParameterNotFound", "Parameter %s not found.", name)
}

func errBadParamName() *apiError {
	return errf("ValidationException", `Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive). If formed as path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_`)
}

func validateParamName(name string) *apiError {
	if name == "" {
		return validationErr("Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	if len(name) > 1011 {
		return validationErr("Value at 'name' failed to satisfy constraint: Member must have length less than or equal to 1011")
	}
	if !ssmNameRe.MatchString(name) || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return errBadParamName()
	}
	first := strings.TrimPrefix(name, "/")
	if hasPrefixFold(first, "aws") || hasPrefixFold(first, "ssm") {
		return errBadParamName()
	}
	if strings.Contains(name, "/") && !strings.HasPrefix(name, "/") {
		return errf("ValidationException", "Parameter name must be a fully qualified name.")
	}
	if strings.Count(name, "/") > 15 {
		return errf("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels.")
	}
	return nil
}

func (s *Server) paramARN(name string) string {
	return fmt.Sprintf("arn:aws:ssm:%s:%s:parameter/%s", s.opts.Region, s.opts.AccountID, strings.TrimPrefix(name, "/"))
}

func (s *Server) callerARN(c Caller) string {
	if c.RoleARN != "" {
		role := c.RoleARN[strings.LastIndex(c.RoleARN, "/")+1:]
		return fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", s.opts.AccountID, role, c.SessionName)
	}
	return fmt.Sprintf("arn:aws:iam::%s:user/awsemu", s.opts.AccountID)
}

// lookupParam finds a parameter by name or ARN. Caller holds s.mu.
func (s *Server) lookupParam(name string) *ssmParam {
	if p := s.params[name]; p != nil {
		return p
	}
	if strings.HasPrefix(name, "arn:") {
		if i := strings.Index(name, ":parameter/"); i >= 0 {
			rest := name[i+len(":parameter"):]
			if p := s.params[rest]; p != nil {
				return p
			}
			return s.params[rest[1:]]
		}
	}
	return nil
}

// splitSelector splits "name:selector" (names never contain ':'; ARNs do).
func splitSelector(raw string) (name, selector string) {
	start := 0
	if strings.HasPrefix(raw, "arn:") {
		if i := strings.Index(raw, ":parameter/"); i >= 0 {
			start = i + len(":parameter/")
		}
	}
	if i := strings.LastIndexByte(raw[start:], ':'); i >= 0 {
		return raw[:start+i], raw[start+i+1:]
	}
	return raw, ""
}

// resolveParam finds the version "name", "name:version" or "name:label" selects.
func (s *Server) resolveParam(raw string) (*ssmParam, *ssmVersion, string, *apiError) {
	name, sel := splitSelector(raw)
	p := s.lookupParam(name)
	if p == nil {
		return nil, nil, "", errParamNotFound(name)
	}
	if sel == "" {
		latest := p.latest()
		return p, latest, "", nil
	}
	if digitsRe.MatchString(sel) {
		n, _ := strconv.ParseInt(sel, 10, 64)
		v := p.version(n)
		if v == nil {
			return nil, nil, "", errf("ParameterVersionNotFound", "Systems Manager could not find version %d of %s. Verify the version and try again.", n, p.name)
		}
		return p, v, ":" + sel, nil
	}
	v := p.labeled(sel)
	if v == nil {
		return nil, nil, "", errParamNotFound(raw)
	}
	return p, v, ":" + sel, nil
}

// ciphertext is the opaque stand-in for a SecureString read without decryption: it
// does not contain the value.
func ciphertext(name string, v *ssmVersion) string {
	h := sha256.Sum256([]byte(name + "\x00" + strconv.FormatInt(v.version, 10) + "\x00" + v.value))
	return base64.StdEncoding.EncodeToString(append([]byte("AQICAHawsemu\x00"), h[:]...))
}

type paramOut struct {
	Name             string `json:"Name"`
	Type             string `json:"Type"`
	Value            string `json:"Value"`
	Version          int64  `json:"Version"`
	Selector         string `json:"Selector,omitempty"`
	LastModifiedDate *epoch `json:"LastModifiedDate,omitempty"`
	ARN              string `json:"ARN"`
	DataType         string `json:"DataType"`
}

func (s *Server) paramOut(p *ssmParam, v *ssmVersion, selector string, decrypt bool) paramOut {
	val := v.value
	if v.typ == "SecureString" && !decrypt {
		val = ciphertext(p.name, v)
	}
	return paramOut{
		Name: p.name, Type: v.typ, Value: val, Version: v.version, Selector: selector,
		LastModifiedDate: ep(v.modified), ARN: s.paramARN(p.name), DataType: v.dataType,
	}
}

// ---- requests

type putParameterIn struct {
	Name           string
	Value          *string
	Type           string
	Description    *string
	KeyId          *string
	Overwrite      bool
	AllowedPattern *string
	Tags           []Tag
	Tier           string
	DataType       string
}

type nameIn struct {
	Name           string
	WithDecryption bool
}

type getParametersIn struct {
	Names          []string
	WithDecryption bool
}

type paramFilter struct {
	Key    string
	Option string
	Values []string
}

type byPathIn struct {
	Path             string
	Recursive        bool
	ParameterFilters []paramFilter
	WithDecryption   bool
	MaxResults       *int
	NextToken        *string
}

type labelIn struct {
	Name             string
	ParameterVersion *int64
	Labels           []string
}

type historyIn struct {
	Name           string
	WithDecryption bool
	MaxResults     *int
	NextToken      *string
}

type describeIn struct {
	Filters          []paramFilter
	ParameterFilters []paramFilter
	MaxResults       *int
	NextToken        *string
	Shared           bool
}

type tagsIn struct {
	ResourceType string
	ResourceId   string
	Tags         []Tag
	TagKeys      []string
}

type namesIn struct {
	Names []string
}

// ---- dispatch

func (s *Server) dispatchSSM(op string, body []byte, caller Caller) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case "PutParameter":
		var in putParameterIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.ssmPut(in, s.callerARN(caller), nil)
	case "GetParameter":
		var in nameIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		if in.Name == "" {
			return nil, validationErr("Value null at 'name' failed to satisfy constraint: Member must not be null")
		}
		p, v, sel, e := s.resolveParam(in.Name)
		if e != nil {
			return nil, e
		}
		return map[string]any{"Parameter": s.paramOut(p, v, sel, in.WithDecryption)}, nil
	case "GetParameters":
		var in getParametersIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.ssmGetParameters(in)
	case "GetParametersByPath":
		var in byPathIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.ssmByPath(in)
	case "LabelParameterVersion":
		var in labelIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.ssmLabel(in)
	case "UnlabelParameterVersion":
		var in labelIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.ssmUnlabel(in)
	case "GetParameterHistory":
		var in historyIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.ssmHistory(in)
	case "DescribeParameters":
		var in describeIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.ssmDescribe(in)
	case "DeleteParameter":
		var in nameIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		p := s.lookupParam(in.Name)
		if p == nil {
			return nil, errParamNotFound(in.Name)
		}
		delete(s.params, p.name)
		return struct{}{}, nil
	case "DeleteParameters":
		var in namesIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		if len(in.Names) < 1 || len(in.Names) > 10 {
			return nil, validationErr("Value at 'names' failed to satisfy constraint: Member must have length between 1 and 10")
		}
		out := struct {
			DeletedParameters []string `json:"DeletedParameters"`
			InvalidParameters []string `json:"InvalidParameters"`
		}{[]string{}, []string{}}
		for _, n := range in.Names {
			if p := s.lookupParam(n); p != nil {
				delete(s.params, p.name)
				out.DeletedParameters = append(out.DeletedParameters, n)
			} else {
				out.InvalidParameters = append(out.InvalidParameters, n)
			}
		}
		return out, nil
	case "AddTagsToResource", "RemoveTagsFromResource", "ListTagsForResource":
		var in tagsIn
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		return s.ssmTags(op, in)
	}
	return nil, errf("UnknownOperationException", "Unknown operation %s", op)
}

// ssmPut is PutParameter; labels (seeding only) go on the new version.
func (s *Server) ssmPut(in putParameterIn, user string, labels []string) (any, *apiError) {
	in.Name = strings.TrimSpace(in.Name)
	if e := validateParamName(in.Name); e != nil {
		return nil, e
	}
	if in.Value == nil {
		return nil, validationErr("Value null at 'value' failed to satisfy constraint: Member must not be null")
	}
	if *in.Value == "" {
		return nil, validationErr("Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	switch in.Type {
	case "", "String", "StringList", "SecureString":
	default:
		return nil, validationErr("Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]", in.Type)
	}
	switch in.Tier {
	case "", "Standard", "Advanced", "Intelligent-Tiering":
	default:
		return nil, validationErr("Value '%s' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]", in.Tier)
	}
	switch in.DataType {
	case "", "text", "aws:ec2:image", "aws:ssm:integration":
	default:
		return nil, errf("ValidationException", "The following data type is not supported: %s (Data type names are all lowercase.)", in.DataType)
	}
	if in.Overwrite && len(in.Tags) > 0 {
		return nil, errf("ValidationException", "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.")
	}
	if e := validateTags(nil, in.Tags); e != nil {
		return nil, e
	}
	p := s.params[in.Name]
	if p != nil && !in.Overwrite {
		return nil, errf("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	}
	var prev *ssmVersion
	if p != nil {
		prev = p.latest()
	}
	v := &ssmVersion{typ: in.Type, value: *in.Value, tier: in.Tier, dataType: in.DataType, modified: s.opts.Now(), user: user}
	if prev != nil {
		if v.typ == "" {
			v.typ = prev.typ
		}
		v.description, v.keyID, v.allowedPattern = prev.description, prev.keyID, prev.allowedPattern
		if v.tier == "" {
			v.tier = prev.tier
		}
		if v.dataType == "" {
			v.dataType = prev.dataType
		}
	}
	if v.typ == "" {
		return nil, errf("ValidationException", "A parameter type is required when you create a parameter.")
	}
	if v.dataType == "" {
		v.dataType = "text"
	}
	if in.Description != nil {
		v.description = *in.Description
	}
	if in.AllowedPattern != nil {
		v.allowedPattern = *in.AllowedPattern
	}
	if v.allowedPattern != "" {
		re, err := regexp.Compile(v.allowedPattern)
		if err != nil {
			return nil, errf("InvalidAllowedPatternException", "The allowed pattern is not a valid regular expression.")
		}
		if !re.MatchString(v.value) {
			return nil, errf("ParameterPatternMismatchException", "Parameter value, cannot be validated against allowedPattern: %s", v.allowedPattern)
		}
	}
	if v.typ == "SecureString" {
		v.keyID = "alias/aws/ssm"
		if in.KeyId != nil {
			v.keyID = *in.KeyId
		}
	} else {
		v.keyID = ""
	}
	switch {
	case v.tier == "Intelligent-Tiering" && len(v.value) > 4096:
		v.tier = "Advanced"
	case v.tier == "" || v.tier == "Intelligent-Tiering":
		v.tier = "Standard"
	}
	if prev != nil && prev.tier == "Advanced" && v.tier == "Standard" {
		v.tier = "Advanced" // an advanced parameter can't be downgraded
	}
	if v.tier == "Standard" && len(v.value) > 4096 {
		return nil, errf("ValidationException", "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.")
	}
	if len(v.value) > 8192 {
		return nil, errf("ValidationException", "Advanced tier parameters support a maximum parameter value of 8192 characters.")
	}
	if p == nil {
		s.seq++
		p = &ssmParam{seq: s.seq, name: in.Name, next: 1, tags: map[string]string{}}
		for _, t := range in.Tags {
			p.tags[t.Key] = t.Value
		}
		s.params[in.Name] = p
	} else if len(p.versions) >= maxParamVersions {
		oldest := p.versions[0]
		if len(oldest.labels) > 0 {
			return nil, errf("ParameterMaxVersionLimitExceeded", "You attempted to create a new version of %s by calling the PutParameter API with the overwrite flag. Version %d, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.", p.name, oldest.version)
		}
		p.versions = p.versions[1:]
	}
	v.version = p.next
	v.labels = labels
	p.next++
	p.versions = append(p.versions, v)
	return map[string]any{"Version": v.version, "Tier": v.tier}, nil
}

func (s *Server) ssmGetParameters(in getParametersIn) (any, *apiError) {
	if len(in.Names) < 1 {
		return nil, validationErr("Value '[]' at 'names' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(in.Names) > 10 {
		return nil, validationErr("Value '[%s]' at 'names' failed to satisfy constraint: Member must have length less than or equal to 10", strings.Join(in.Names, ", "))
	}
	out := struct {
		Parameters        []paramOut `json:"Parameters"`
		InvalidParameters []string   `json:"InvalidParameters"`
	}{[]paramOut{}, []string{}}
	seen := map[string]bool{}
	for _, raw := range in.Names {
		if seen[raw] {
			continue
		}
		seen[raw] = true
		p, v, sel, e := s.resolveParam(raw)
		if e != nil {
			out.InvalidParameters = append(out.InvalidParameters, raw)
			continue
		}
		out.Parameters = append(out.Parameters, s.paramOut(p, v, sel, in.WithDecryption))
	}
	return out, nil
}

// pathPrefix validates a hierarchy path and returns the prefix its children have.
func pathPrefix(path string) (string, *apiError) {
	if !strings.HasPrefix(path, "/") {
		return "", errf("ValidationException", `The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash "/". It can't be prefixed with "aws" or "ssm" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol "/". Valid example: /get/parameters2-/by1./path0_.`)
	}
	if len(path) > 2048 || !ssmNameRe.MatchString(path) {
		return "", errBadParamName()
	}
	return strings.TrimSuffix(path, "/") + "/", nil
}

// underPath reports whether name lies under prefix (directly unless recursive). Names
// without a leading slash live at the root.
func underPath(name, prefix string, recursive bool) bool {
	if prefix == "/" && !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	return recursive || !strings.Contains(name[len(prefix):], "/")
}

func (s *Server) ssmByPath(in byPathIn) (any, *apiError) {
	size := 10
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 10 {
			return nil, validationErr("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10", *in.MaxResults)
		}
		size = *in.MaxResults
	}
	prefix, e := pathPrefix(in.Path)
	if e != nil {
		return nil, e
	}
	for _, f := range in.ParameterFilters {
		if e := validateParamFilter(f, "GetParametersByPath"); e != nil {
			return nil, e
		}
	}
	cursor := ""
	if in.NextToken != nil {
		t, ok := decodeToken(*in.NextToken, "GetParametersByPath")
		if !ok {
			return nil, errf("InvalidNextToken", "The nextToken is not valid.")
		}
		cursor = t.Key
	}
	names := s.sortedParamNames(cursor)
	out := struct {
		Parameters []paramOut `json:"Parameters"`
		NextToken  string     `json:"NextToken,omitempty"`
	}{Parameters: []paramOut{}}
	for _, n := range names {
		p := s.params[n]
		if !underPath(n, prefix, in.Recursive) {
			continue
		}
		v := p.latest()
		sel := ""
		ok := true
		// A Label filter selects the labelled version (any of its values).
		for _, f := range in.ParameterFilters {
			if f.Key == "Label" {
				v = nil
				for _, l := range f.Values {
					if lv := p.labeled(l); lv != nil {
						v, sel = lv, ":"+l
						break
					}
				}
				if v == nil {
					ok = false
				}
				continue
			}
			if !matchParamFilter(p, p.latest(), f) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		if len(out.Parameters) == size {
			out.NextToken = encodeToken(pageToken{Op: "GetParametersByPath", Key: out.Parameters[size-1].Name})
			break
		}
		out.Parameters = append(out.Parameters, s.paramOut(p, v, sel, in.WithDecryption))
	}
	return out, nil
}

// sortedParamNames lists parameter names after cursor, sorted.
func (s *Server) sortedParamNames(after string) []string {
	names := make([]string, 0, len(s.params))
	for n := range s.params {
		if n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// validateParamFilter checks a ParameterStringFilter for op (GetParametersByPath or
// DescribeParameters), with the error codes SSM uses.
func validateParamFilter(f paramFilter, op string) *apiError {
	if f.Key == "" || len(f.Key) > 132 || !ssmKeyRe.MatchString(f.Key) {
		return validationErr("Value '%s' at 'parameterFilters.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType", f.Key)
	}
	isTag := strings.HasPrefix(f.Key, "tag:")
	if op == "GetParametersByPath" {
		if isTag || f.Key == "Name" || f.Key == "Path" || f.Key == "Tier" || f.Key == "DataType" {
			return errf("InvalidFilterKey", "The following filter key is not valid: %s. Valid filter keys include: [Type, KeyId, Label].", f.Key)
		}
	} else if f.Key == "Label" {
		return errf("InvalidFilterKey", "The following filter key is not valid: Label. Valid filter keys include: [Name, Type, KeyId, Path, Tier, DataType, tag:<key>].")
	}
	opt := f.Option
	switch {
	case f.Key == "Path":
		if opt != "" && opt != "Recursive" && opt != "OneLevel" {
			return errf("InvalidFilterOption", "The filter option %s is not valid for key Path. Valid options include: [Recursive, OneLevel].", opt)
		}
	case f.Key == "Label":
		if opt != "" && opt != "Equals" {
			return errf("InvalidFilterOption", "The filter option %s is not valid for key Label. Valid options include: [Equals].", opt)
		}
	case f.Key == "Name" && op == "DescribeParameters":
		if opt != "" && opt != "Equals" && opt != "BeginsWith" && opt != "Contains" {
			return errf("InvalidFilterOption", "The filter option %s is not valid for key Name. Valid options include: [Equals, BeginsWith, Contains].", opt)
		}
	default:
		if opt != "" && opt != "Equals" && opt != "BeginsWith" {
			return errf("InvalidFilterOption", "The filter option %s is not valid for key %s. Valid options include: [Equals, BeginsWith].", opt, f.Key)
		}
	}
	if len(f.Values) == 0 && !isTag {
		return errf("InvalidFilterValue", "The filter values for key %s can't be empty.", f.Key)
	}
	if len(f.Values) > 50 {
		return validationErr("Value at 'parameterFilters.member.values' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for _, v := range f.Values {
		if len(v) < 1 || len(v) > 1024 {
			return validationErr("Value at 'parameterFilters.member.values' failed to satisfy constraint: Member must have length between 1 and 1024")
		}
		switch f.Key {
		case "Type":
			if v != "String" && v != "StringList" && v != "SecureString" {
				return errf("InvalidFilterValue", "The filter value %s is not valid for key Type. Valid values include: [String, StringList, SecureString].", v)
			}
		case "Path":
			if !strings.HasPrefix(v, "/") {
				return errf("InvalidFilterValue", "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\".")
			}
		}
	}
	return nil
}

// matchParamFilter applies one validated filter (not Label) to a parameter.
func matchParamFilter(p *ssmParam, v *ssmVersion, f paramFilter) bool {
	opt := f.Option
	cmp := func(have string) bool {
		for _, want := range f.Values {
			switch opt {
			case "BeginsWith":
				if strings.HasPrefix(have, want) {
					return true
				}
			case "Contains":
				if strings.Contains(have, want) {
					return true
				}
			default:
				if have == want {
					return true
				}
			}
		}
		return false
	}
	switch {
	case strings.HasPrefix(f.Key, "tag:"):
		tv, ok := p.tags[strings.TrimPrefix(f.Key, "tag:")]
		if !ok {
			return false
		}
		return len(f.Values) == 0 || cmp(tv)
	case f.Key == "Name":
		return cmp(p.name)
	case f.Key == "Type":
		return cmp(v.typ)
	case f.Key == "KeyId":
		return cmp(v.keyID)
	case f.Key == "Tier":
		return cmp(v.tier)
	case f.Key == "DataType":
		return cmp(v.dataType)
	case f.Key == "Path":
		for _, path := range f.Values {
			prefix := strings.TrimSuffix(path, "/") + "/"
			if underPath(p.name, prefix, opt == "Recursive") {
				return true
			}
		}
		return false
	}
	return false
}

type paramMeta struct {
	Name             string `json:"Name"`
	ARN              string `json:"ARN"`
	Type             string `json:"Type"`
	KeyId            string `json:"KeyId,omitempty"`
	LastModifiedDate *epoch `json:"LastModifiedDate,omitempty"`
	LastModifiedUser string `json:"LastModifiedUser,omitempty"`
	Description      string `json:"Description,omitempty"`
	AllowedPattern   string `json:"AllowedPattern,omitempty"`
	Version          int64  `json:"Version"`
	Tier             string `json:"Tier"`
	Policies         []any  `json:"Policies"`
	DataType         string `json:"DataType"`
}

func (s *Server) ssmDescribe(in describeIn) (any, *apiError) {
	size := 50
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 50 {
			return nil, validationErr("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50", *in.MaxResults)
		}
		size = *in.MaxResults
	}
	if len(in.Filters) > 0 && len(in.ParameterFilters) > 0 {
		return nil, errf("ValidationException", "You can use either Filters or ParameterFilters in a single request, but not both.")
	}
	filters := in.ParameterFilters
	for _, f := range in.Filters { // the legacy Filters: Name (prefix), Type, KeyId
		switch f.Key {
		case "Name":
			filters = append(filters, paramFilter{Key: "Name", Option: "BeginsWith", Values: f.Values})
		case "Type", "KeyId":
			filters = append(filters, paramFilter{Key: f.Key, Option: "Equals", Values: f.Values})
		default:
			return nil, validationErr("Value '%s' at 'filters.member.key' failed to satisfy constraint: Member must satisfy enum value set: [Name, Type, KeyId]", f.Key)
		}
	}
	for _, f := range filters {
		if e := validateParamFilter(f, "DescribeParameters"); e != nil {
			return nil, e
		}
	}
	cursor := ""
	if in.NextToken != nil {
		t, ok := decodeToken(*in.NextToken, "DescribeParameters")
		if !ok {
			return nil, errf("InvalidNextToken", "The nextToken is not valid.")
		}
		cursor = t.Key
	}
	out := struct {
		Parameters []paramMeta `json:"Parameters"`
		NextToken  string      `json:"NextToken,omitempty"`
	}{Parameters: []paramMeta{}}
	for _, n := range s.sortedParamNames(cursor) {
		p := s.params[n]
		v := p.latest()
		ok := true
		for _, f := range filters {
			if !matchParamFilter(p, v, f) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if len(out.Parameters) == size {
			out.NextToken = encodeToken(pageToken{Op: "DescribeParameters", Key: out.Parameters[size-1].Name})
			break
		}
		out.Parameters = append(out.Parameters, paramMeta{
			Name: p.name, ARN: s.paramARN(p.name), Type: v.typ, KeyId: v.keyID,
			LastModifiedDate: ep(v.modified), LastModifiedUser: v.user, Description: v.description,
			AllowedPattern: v.allowedPattern, Version: v.version, Tier: v.tier, Policies: []any{}, DataType: v.dataType,
		})
	}
	return out, nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 100 || !ssmLabelRe.MatchString(l) {
		return false
	}
	if l[0] >= '0' && l[0] <= '9' {
		return false
	}
	return !hasPrefixFold(l, "aws") && !hasPrefixFold(l, "ssm")
}

func (s *Server) ssmLabel(in labelIn) (any, *apiError) {
	if len(in.Labels) < 1 || len(in.Labels) > 10 {
		return nil, validationErr("Value at 'labels' failed to satisfy constraint: Member must have length between 1 and 10")
	}
	p := s.lookupParam(in.Name)
	if p == nil {
		return nil, errParamNotFound(in.Name)
	}
	v := p.latest()
	if in.ParameterVersion != nil {
		if v = p.version(*in.ParameterVersion); v == nil {
			return nil, errf("ParameterVersionNotFound", "Systems Manager could not find version %d of %s. Verify the version and try again.", *in.ParameterVersion, p.name)
		}
	}
	invalid := []string{}
	var valid []string
	for _, l := range in.Labels {
		if validLabel(l) {
			valid = append(valid, l)
		} else {
			invalid = append(invalid, l)
		}
	}
	count := len(v.labels)
	for _, l := range valid {
		if !containsStr(v.labels, l) {
			count++
		}
	}
	if count > 10 {
		return nil, errf("ParameterVersionLabelLimitExceeded", "A parameter version can have a maximum of ten labels. Move one or more labels to another version and try again.")
	}
	for _, l := range valid {
		for _, other := range p.versions {
			if other != v {
				other.labels = removeStr(other.labels, l)
			}
		}
		if !containsStr(v.labels, l) {
			v.labels = append(v.labels, l)
		}
	}
	return map[string]any{"InvalidLabels": invalid, "ParameterVersion": v.version}, nil
}

func (s *Server) ssmUnlabel(in labelIn) (any, *apiError) {
	if in.ParameterVersion == nil {
		return nil, validationErr("Value null at 'parameterVersion' failed to satisfy constraint: Member must not be null")
	}
	p := s.lookupParam(in.Name)
	if p == nil {
		return nil, errParamNotFound(in.Name)
	}
	v := p.version(*in.ParameterVersion)
	if v == nil {
		return nil, errf("ParameterVersionNotFound", "Systems Manager could not find version %d of %s. Verify the version and try again.", *in.ParameterVersion, p.name)
	}
	removed, invalid := []string{}, []string{}
	for _, l := range in.Labels {
		if containsStr(v.labels, l) {
			v.labels = removeStr(v.labels, l)
			removed = append(removed, l)
		} else {
			invalid = append(invalid, l)
		}
	}
	return map[string]any{"RemovedLabels": removed, "InvalidLabels": invalid}, nil
}

type historyOut struct {
	Name             string   `json:"Name"`
	Type             string   `json:"Type"`
	KeyId            string   `json:"KeyId,omitempty"`
	LastModifiedDate *epoch   `json:"LastModifiedDate,omitempty"`
	LastModifiedUser string   `json:"LastModifiedUser,omitempty"`
	Description      string   `json:"Description,omitempty"`
	Value            string   `json:"Value"`
	AllowedPattern   string   `json:"AllowedPattern,omitempty"`
	Version          int64    `json:"Version"`
	Labels           []string `json:"Labels"`
	Tier             string   `json:"Tier"`
	Policies         []any    `json:"Policies"`
	DataType         string   `json:"DataType"`
}

func (s *Server) ssmHistory(in historyIn) (any, *apiError) {
	size := 50
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 50 {
			return nil, validationErr("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50", *in.MaxResults)
		}
		size = *in.MaxResults
	}
	p := s.lookupParam(in.Name)
	if p == nil {
		return nil, errParamNotFound(in.Name)
	}
	var after int64
	if in.NextToken != nil {
		t, ok := decodeToken(*in.NextToken, "GetParameterHistory")
		if !ok {
			return nil, errf("InvalidNextToken", "The nextToken is not valid.")
		}
		after = t.Seq
	}
	out := struct {
		Parameters []historyOut `json:"Parameters"`
		NextToken  string       `json:"NextToken,omitempty"`
	}{Parameters: []historyOut{}}
	for _, v := range p.versions {
		if v.version <= after {
			continue
		}
		if len(out.Parameters) == size {
			out.NextToken = encodeToken(pageToken{Op: "GetParameterHistory", Seq: out.Parameters[size-1].Version})
			break
		}
		val := v.value
		if v.typ == "SecureString" && !in.WithDecryption {
			val = ciphertext(p.name, v)
		}
		labels := append([]string{}, v.labels...)
		out.Parameters = append(out.Parameters, historyOut{
			Name: p.name, Type: v.typ, KeyId: v.keyID, LastModifiedDate: ep(v.modified), LastModifiedUser: v.user,
			Description: v.description, Value: val, AllowedPattern: v.allowedPattern, Version: v.version,
			Labels: labels, Tier: v.tier, Policies: []any{}, DataType: v.dataType,
		})
	}
	return out, nil
}

func (s *Server) ssmTags(op string, in tagsIn) (any, *apiError) {
	switch in.ResourceType {
	case "Parameter":
	case "Document", "ManagedInstance", "MaintenanceWindow", "PatchBaseline", "OpsItem", "OpsMetadata", "Automation", "Association":
		return nil, errf("InvalidResourceType", "The resource type isn't supported by this emulator.")
	default:
		return nil, validationErr("Value '%s' at 'resourceType' failed to satisfy constraint: Member must satisfy enum value set: [Parameter, Document, ManagedInstance, MaintenanceWindow, PatchBaseline, OpsItem, OpsMetadata, Automation, Association]", in.ResourceType)
	}
	p := s.lookupParam(in.ResourceId)
	if p == nil {
		return nil, errf("InvalidResourceId", "The resource ID \"%s\" is not valid. Verify the ID and try again.", in.ResourceId)
	}
	switch op {
	case "ListTagsForResource":
		return map[string]any{"TagList": sortedTags(p.tags)}, nil
	case "RemoveTagsFromResource":
		for _, k := range in.TagKeys {
			delete(p.tags, k)
		}
		return struct{}{}, nil
	}
	if len(in.Tags) == 0 {
		return nil, validationErr("Value '[]' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if e := validateTags(p.tags, in.Tags); e != nil {
		if e.code == "ValidationException" && strings.HasPrefix(e.msg, "Number of tags") {
			return nil, errf("TooManyTagsError", "The Targets parameter includes too many tags. Remove one or more tags and try the command again.")
		}
		return nil, e
	}
	for _, t := range in.Tags {
		p.tags[t.Key] = t.Value
	}
	return struct{}{}, nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func removeStr(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// seedParam puts a parameter (overwriting: a new version when it exists).
func (s *Server) seedParam(name, typ, value string, tags map[string]string, labels []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if typ == "" {
		typ = "String"
	}
	v := value
	exists := s.params[name] != nil
	in := putParameterIn{Name: name, Value: &v, Type: typ, Overwrite: exists}
	if !exists {
		in.Tags = sortedTags(tags)
	}
	if _, e := s.ssmPut(in, s.callerARN(Caller{}), append([]string{}, labels...)); e != nil {
		return e
	}
	p := s.params[name]
	for k, tv := range tags {
		p.tags[k] = tv
	}
	for _, l := range labels {
		for _, other := range p.versions[:len(p.versions)-1] {
			other.labels = removeStr(other.labels, l)
		}
	}
	return nil
}
