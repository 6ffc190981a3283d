package memory

import (
	"context"
	"testing"

	"github.com/secretsync/secretsync/internal/provider/providertest"
)

func TestConformance(t *testing.T) {
	b := New("memory")
	c, err := b.NewClient(context.Background(), nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	providertest.Run(t, "conf", providertest.Harness{
		Client:    c,
		Put:       func(_ *testing.T, name string, v []byte, tags map[string]string) string { return b.Put(name, v, tags) },
		Name:      func(s string) string { return s },
		Versioned: true,
		Binary:    true,
	})
}
