package parameterstore_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/aws/awstest"
	"github.com/secretsync/secretsync/internal/provider/aws/parameterstore"
	"github.com/secretsync/secretsync/internal/provider/providertest"
	"github.com/secretsync/secretsync/test/awsemu"
)

// adminClient writes test data straight through the SDK, as an administrator would.
func adminClient(srv *awsemu.Server) *ssm.Client {
	akid, secret := srv.StaticCredentials()
	return ssm.NewFromConfig(aws.Config{
		Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
	})
}

// put writes a SecureString version (PutParameter with Overwrite: SSM refuses tags
// together with Overwrite, so tags go through AddTagsToResource) and returns the
// version number.
func put(t *testing.T, admin *ssm.Client, name string, value []byte, tags map[string]string) string {
	t.Helper()
	ctx := context.Background()
	out, err := admin.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(string(value)), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("PutParameter %s: %v", name, err)
	}
	if len(tags) > 0 {
		var tt []ssmtypes.Tag
		for k, v := range tags {
			tt = append(tt, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if _, err := admin.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name), Tags: tt}); err != nil {
			t.Fatalf("AddTagsToResource %s: %v", name, err)
		}
	}
	return strconv.FormatInt(out.Version, 10)
}

func TestConformance(t *testing.T) {
	srv := awsemu.NewTestServer(t, awsemu.Options{})
	akid, secret := srv.StaticCredentials()
	store := awstest.Store(v1alpha1.AWSServiceParameterStore, srv.URL(), awstest.StaticAuth)
	p := parameterstore.NewWithOptions(awstest.FastOptions())
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
		Name:      func(s string) string { return "/" + s },
		Versioned: true,
	})
	if _, ok := client.(provider.BatchGetter); !ok {
		t.Fatal("client is not a BatchGetter")
	}
}
