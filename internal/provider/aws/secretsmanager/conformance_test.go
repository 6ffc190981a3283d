package secretsmanager_test

import (
	"context"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/aws/awstest"
	"github.com/secretsync/secretsync/internal/provider/aws/secretsmanager"
	"github.com/secretsync/secretsync/internal/provider/providertest"
	"github.com/secretsync/secretsync/test/awsemu"
)

// adminClient writes test data straight through the SDK, as an administrator would.
func adminClient(srv *awsemu.Server) *sm.Client {
	akid, secret := srv.StaticCredentials()
	return sm.NewFromConfig(aws.Config{
		Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
	})
}

// put creates name or adds a version to it, tags it, and returns the VersionId.
func put(t *testing.T, admin *sm.Client, name string, value []byte, tags map[string]string) string {
	t.Helper()
	ctx := context.Background()
	var str *string
	var bin []byte
	if utf8.Valid(value) {
		str = aws.String(string(value))
	} else {
		bin = value
	}
	var vid *string
	out, err := admin.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), SecretString: str, SecretBinary: bin})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		created, err := admin.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: str, SecretBinary: bin})
		if err != nil {
			t.Fatalf("CreateSecret %s: %v", name, err)
		}
		vid = created.VersionId
	case err != nil:
		t.Fatalf("PutSecretValue %s: %v", name, err)
	default:
		vid = out.VersionId
	}
	if len(tags) > 0 {
		var tt []smtypes.Tag
		for k, v := range tags {
			tt = append(tt, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if _, err := admin.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String(name), Tags: tt}); err != nil {
			t.Fatalf("TagResource %s: %v", name, err)
		}
	}
	return aws.ToString(vid)
}

func TestConformance(t *testing.T) {
	srv := awsemu.NewTestServer(t, awsemu.Options{})
	akid, secret := srv.StaticCredentials()
	store := awstest.Store(v1alpha1.AWSServiceSecretsManager, srv.URL(), awstest.StaticAuth)
	p := secretsmanager.NewWithOptions(awstest.FastOptions())
	if err := p.ValidateStore(store); err != nil {
		t.Fatal(err)
	}
	client, err := p.NewClient(context.Background(), store, awstest.StaticKube(akid, secret), "team-a")
	if err != nil {
		t.Fatal(err)
	}
	admin := adminClient(srv)
	providertest.Run(t, "conf", providertest.Harness{
		Client: client,
		Put: func(t *testing.T, name string, value []byte, tags map[string]string) string {
			return put(t, admin, name, value, tags)
		},
		Name:      func(s string) string { return s },
		Versioned: true,
		Binary:    true,
	})
	if _, ok := client.(provider.BatchGetter); !ok {
		t.Fatal("client is not a BatchGetter")
	}
}
