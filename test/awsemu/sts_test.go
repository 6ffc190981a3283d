package awsemu_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/secretsync/secretsync/test/awsemu"
)

const role = "arn:aws:iam::123456789012:role/reader"

func TestSTSAssumeRole(t *testing.T) {
	c := newClients(t, awsemu.Options{ExternalIDs: map[string]string{"arn:aws:iam::123456789012:role/guarded": "ext-123"}})
	out := must[*sts.AssumeRoleOutput](t)(c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("s1")}))
	cr := out.Credentials
	if !strings.HasPrefix(aws.ToString(cr.AccessKeyId), "ASIA") || aws.ToString(cr.SecretAccessKey) == "" || aws.ToString(cr.SessionToken) == "" {
		t.Fatalf("credentials: %+v", cr)
	}
	if d := time.Until(aws.ToTime(cr.Expiration)); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("expiration in %v", d)
	}
	if aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::123456789012:assumed-role/reader/s1" {
		t.Fatalf("AssumedRoleUser: %s", aws.ToString(out.AssumedRoleUser.Arn))
	}

	// The issued credentials work, and the server knows who used them.
	sm := secretsmanager.NewFromConfig(cfgFor(c.srv, credentials.NewStaticCredentialsProvider(aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken))))
	_, err := sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if who, ok := c.srv.LastCaller("ListSecrets"); !ok || who.RoleARN != role || who.SessionName != "s1" || who.Source != "AssumeRole" {
		t.Fatalf("caller: %+v", who)
	}
	// Without the session token they are refused.
	bad := secretsmanager.NewFromConfig(cfgFor(c.srv, credentials.NewStaticCredentialsProvider(aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), "")))
	_, err = bad.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	wantCode(t, err, "UnrecognizedClientException")

	c.srv.ExpireCredentials()
	_, err = sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	wantCode(t, err, "ExpiredTokenException")

	for _, tc := range []struct {
		name string
		in   sts.AssumeRoleInput
		want string
	}{
		{"bad role ARN", sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::1:user/x"), RoleSessionName: aws.String("s1")}, "ValidationError"},
		{"bad session name", sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("a b")}, "ValidationError"},
		{"duration too short", sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(60)}, "ValidationError"},
		{"missing external id", sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/guarded"), RoleSessionName: aws.String("s1")}, "AccessDenied"},
		{"wrong external id", sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/guarded"), RoleSessionName: aws.String("s1"), ExternalId: aws.String("nope-1")}, "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.sts.AssumeRole(ctx, &tc.in)
			wantCode(t, err, tc.want)
		})
	}
	must[*sts.AssumeRoleOutput](t)(c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/guarded"), RoleSessionName: aws.String("s1"), ExternalId: aws.String("ext-123")}))

	t.Run("unknown key", func(t *testing.T) {
		other := sts.NewFromConfig(cfgFor(c.srv, credentials.NewStaticCredentialsProvider("AKIAUNKNOWN000000000", "x", "")))
		_, err := other.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("s1")})
		wantCode(t, err, "InvalidClientTokenId")
		if status(err) != 403 {
			t.Fatalf("status = %d", status(err))
		}
	})
	t.Run("caller identity", func(t *testing.T) {
		id := must[*sts.GetCallerIdentityOutput](t)(c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))
		if aws.ToString(id.Account) != "123456789012" || !strings.HasSuffix(aws.ToString(id.Arn), ":user/awsemu") {
			t.Fatalf("identity: %+v", id)
		}
	})
}

func TestSTSAssumeRoleWithWebIdentity(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	// Unsigned, as the SDK sends it.
	anon := sts.NewFromConfig(cfgFor(c.srv, aws.AnonymousCredentials{}))
	good := awsemu.UnsignedJWT(map[string]any{"sub": "system:serviceaccount:ns:app", "aud": []string{"sts.test"}, "iss": "https://issuer.test", "exp": time.Now().Add(time.Hour).Unix()})

	var seen []string
	c.srv.SetWebIdentityValidator(func(token, roleARN string) error {
		claims, err := awsemu.DecodeJWTClaims(token)
		if err != nil {
			return err
		}
		seen = append(seen, claims["sub"].(string)+" "+roleARN)
		if claims["sub"] != "system:serviceaccount:ns:app" {
			return errors.New("subject not allowed")
		}
		return nil
	})
	out := must[*sts.AssumeRoleWithWebIdentityOutput](t)(anon.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(role), RoleSessionName: aws.String("web"), WebIdentityToken: aws.String(good)}))
	if !strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA") || aws.ToString(out.SubjectFromWebIdentityToken) != "system:serviceaccount:ns:app" || aws.ToString(out.Audience) != "sts.test" {
		t.Fatalf("output: %+v", out)
	}
	if len(seen) != 1 || seen[0] != "system:serviceaccount:ns:app "+role {
		t.Fatalf("validator saw %v", seen)
	}
	sm := secretsmanager.NewFromConfig(cfgFor(c.srv, credentials.NewStaticCredentialsProvider(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))))
	if _, err := sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{}); err != nil {
		t.Fatal(err)
	}
	if who, _ := c.srv.LastCaller("secretsmanager.ListSecrets"); who.Source != "AssumeRoleWithWebIdentity" || who.RoleARN != role {
		t.Fatalf("caller %+v", who)
	}

	for _, tc := range []struct {
		name  string
		token string
		want  string
	}{
		{"rejected by the hook", awsemu.UnsignedJWT(map[string]any{"sub": "system:serviceaccount:ns:other"}), "InvalidIdentityToken"},
		{"not a JWT", "not-a-jwt", "InvalidIdentityToken"},
		{"expired", awsemu.UnsignedJWT(map[string]any{"sub": "system:serviceaccount:ns:app", "exp": time.Now().Add(-time.Minute).Unix()}), "ExpiredTokenException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := anon.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(role), RoleSessionName: aws.String("web"), WebIdentityToken: aws.String(tc.token)})
			wantCode(t, err, tc.want)
		})
	}
}

func TestAudienceValidatorAndClaimsEndpoint(t *testing.T) {
	c := newClients(t, awsemu.Options{WebIdentityValidator: awsemu.AudienceValidator("want-aud")})
	anon := sts.NewFromConfig(cfgFor(c.srv, aws.AnonymousCredentials{}))
	assume := func(claims map[string]any) error {
		_, err := anon.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(role), RoleSessionName: aws.String("web"), WebIdentityToken: aws.String(awsemu.UnsignedJWT(claims))})
		return err
	}
	if err := assume(map[string]any{"sub": "system:serviceaccount:ns:app", "aud": []string{"other", "want-aud"}}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, assume(map[string]any{"sub": "system:serviceaccount:ns:app", "aud": "other"}), "InvalidIdentityToken")
	wantCode(t, assume(map[string]any{"sub": "user", "aud": "want-aud"}), "InvalidIdentityToken")

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, c.srv.URL()+"/_emu/web-identity", http.NoBody)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var claims map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&claims); err != nil {
		t.Fatalf("decode claims: %v", err)
	}
	if claims["sub"] != "system:serviceaccount:ns:app" {
		t.Fatalf("claims %v", claims)
	}
	req2, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, c.srv.URL()+"/_emu/caller?op=sts.AssumeRole", http.NoBody)
	resp2, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Fatalf("caller of an op never called: %d", resp2.StatusCode)
	}
}
