package aws

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// Provider is the provider.Provider of one AWS service. Validation, credentials and
// endpoint resolution are shared; each service only says how to build its client.
type Provider struct {
	name      string
	service   v1alpha1.AWSService
	opts      Options
	newClient func(aws.Config) provider.Client
}

// NewProvider returns the provider for service, registered as name.
func NewProvider(name string, service v1alpha1.AWSService, opts Options, newClient func(aws.Config) provider.Client) *Provider {
	return &Provider{name: name, service: service, opts: opts, newClient: newClient}
}

func (p *Provider) Name() string { return p.name }

func (p *Provider) ValidateStore(store v1alpha1.GenericStore) error {
	return ValidateStore(store, p.service)
}

func (p *Provider) NewClient(ctx context.Context, store v1alpha1.GenericStore, kube provider.Kube, namespace string) (provider.Client, error) {
	if err := p.ValidateStore(store); err != nil {
		return nil, err
	}
	cfg, err := NewConfig(ctx, store, kube, namespace, p.opts)
	if err != nil {
		return nil, err
	}
	return p.newClient(cfg), nil
}
