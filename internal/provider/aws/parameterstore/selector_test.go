package parameterstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/aws/parameterstore"
	"github.com/secretsync/secretsync/test/awsemu"
)

// TestSDKBatchWithoutSelector reads versions and labels of one parameter in one
// round from an emulator that answers without Selector (awsemu's omit-selector
// fault, as LocalStack-style emulators do) and from one that answers like AWS: the
// same values either way, and one parameter's versions never share a call.
func TestSDKBatchWithoutSelector(t *testing.T) {
	srv, client := emuClient(t)
	if err := srv.Seed(&awsemu.Seed{Parameters: []awsemu.SeedParameter{
		{Name: "/app/p00", Value: "v0-2", Labels: []string{"stable"}},
		{Name: "/app/p00", Value: "v0-3"},
	}}); err != nil {
		t.Fatal(err)
	}
	refs := []provider.Ref{
		{Key: "/app/p00"}, {Key: "/app/p00", Version: "1"}, {Key: "/app/p00", Version: "stable"}, {Key: "/app/p00", Version: "2"},
		{Key: "/app/p01"}, {Key: "/app/p01", Version: "1"}, {Key: "/app/p02", Version: "stable"},
	}
	want := []struct{ value, version string }{
		{"v0-3", "3"}, {"v0", "1"}, {"v0-2", "2"}, {"v0-2", "2"},
		{"v1", "1"}, {"v1", "1"}, {"", ""}, // p02 has no label "stable": not found
	}
	for _, tc := range []struct {
		name  string
		fault bool
	}{{"AWS answers with Selector", false}, {"emulator answers without Selector", true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv.ClearFaults()
			srv.ResetCalls()
			if tc.fault {
				if err := srv.InjectFault(awsemu.Fault{Op: "GetParameters", Kind: awsemu.FaultOmitSelector}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := client.(*parameterstore.Client).GetSecrets(context.Background(), refs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if want[i].value == "" {
					if !errors.Is(provider.Classify(r.Err), provider.ErrNotFound) {
						t.Errorf("%+v: err %v, want not found", refs[i], r.Err)
					}
					continue
				}
				if r.Err != nil || string(r.Secret.Value) != want[i].value || r.Secret.Version != want[i].version {
					t.Errorf("%+v: %q version %q, %v; want %q version %q", refs[i], r.Secret.Value, r.Secret.Version, provider.SafeMessage(r.Err), want[i].value, want[i].version)
				}
			}
			// Four selectors of /app/p00: four calls, the others ride along.
			if n := srv.Calls("GetParameters"); n != 4 {
				t.Errorf("GetParameters calls = %d, want 4", n)
			}
		})
	}
}
