package awsemu_test

import (
	"errors"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/secretsync/secretsync/test/awsemu"
)

func faultSeed() *awsemu.Seed {
	return &awsemu.Seed{
		Secrets:    []awsemu.SeedSecret{{Name: "a", Value: aws.String("1")}, {Name: "b", Value: aws.String("2")}, {Name: "c", Value: aws.String("3")}},
		Parameters: []awsemu.SeedParameter{{Name: "/p/a", Value: "1"}, {Name: "/p/b", Value: "2"}, {Name: "/p/c", Value: "3"}},
	}
}

// TestFaultEndlessNextToken pages through a listing of three items, two per page:
// without the fault it ends after two pages; with it, every answer carries a
// NextToken (the same one, or a new one each time) and a request carrying that token
// is served as the first page.
func TestFaultEndlessNextToken(t *testing.T) {
	c := newClients(t, awsemu.Options{Seed: faultSeed()})
	listSM := func(tok *string) ([]string, *string, error) {
		out, err := c.sm.ListSecrets(ctx, &sm.ListSecretsInput{MaxResults: aws.Int32(2), NextToken: tok})
		if err != nil {
			return nil, nil, err
		}
		var names []string
		for _, e := range out.SecretList {
			names = append(names, aws.ToString(e.Name))
		}
		return names, out.NextToken, nil
	}
	listSSM := func(tok *string) ([]string, *string, error) {
		out, err := c.ssm.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/p"), MaxResults: aws.Int32(2), NextToken: tok})
		if err != nil {
			return nil, nil, err
		}
		var names []string
		for _, p := range out.Parameters {
			names = append(names, aws.ToString(p.Name))
		}
		return names, out.NextToken, nil
	}
	type lister func(*string) ([]string, *string, error)
	tests := []struct {
		name   string
		op     string
		list   lister
		kind   awsemu.FaultKind
		repeat bool
	}{
		{"ListSecrets repeated token", "ListSecrets", listSM, awsemu.FaultEndlessTokenRepeat, true},
		{"ListSecrets fresh tokens", "ListSecrets", listSM, awsemu.FaultEndlessTokenFresh, false},
		{"GetParametersByPath repeated token", "ssm.GetParametersByPath", listSSM, awsemu.FaultEndlessTokenRepeat, true},
		{"GetParametersByPath fresh tokens", "GetParametersByPath", listSSM, awsemu.FaultEndlessTokenFresh, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Unfaulted: two pages, then no token.
			_, tok, err := tc.list(nil)
			if err != nil || tok == nil {
				t.Fatalf("page 1: token %v, err %v", tok, err)
			}
			if _, tok, err = tc.list(tok); err != nil || tok != nil {
				t.Fatalf("page 2: token %v, err %v", aws.ToString(tok), err)
			}

			if err := c.srv.InjectFault(awsemu.Fault{Op: tc.op, Kind: tc.kind}); err != nil {
				t.Fatal(err)
			}
			defer c.srv.ClearFaults()
			seen := map[string]bool{}
			var first string
			tok = nil
			for page := range 5 {
				names, next, err := tc.list(tok)
				if err != nil {
					t.Fatalf("page %d: %v", page, err)
				}
				if next == nil || *next == "" {
					t.Fatalf("page %d: no NextToken", page)
				}
				if len(names) != 2 {
					t.Fatalf("page %d: %v, want the first page again", page, names)
				}
				if page == 0 {
					first = *next
				}
				if tc.repeat && *next != first {
					t.Fatalf("page %d: token %q, want the repeated %q", page, *next, first)
				}
				if !tc.repeat && seen[*next] {
					t.Fatalf("page %d: token %q repeated", page, *next)
				}
				seen[*next] = true
				tok = next
			}
			c.srv.ClearFaults()
			// The endless token is not a real cursor: once the fault is gone it is refused.
			if _, _, err := tc.list(tok); code(err) == "" {
				t.Fatal("endless token accepted after the fault was cleared")
			}
		})
	}
	t.Run("Times bounds the fault", func(t *testing.T) {
		if err := c.srv.InjectFault(awsemu.Fault{Op: "ListSecrets", Kind: awsemu.FaultEndlessTokenRepeat, Times: 1}); err != nil {
			t.Fatal(err)
		}
		defer c.srv.ClearFaults()
		if _, tok, err := listSM(nil); err != nil || tok == nil || !strings.HasPrefix(*tok, "awsemu-endless-") {
			t.Fatalf("faulted: %v %v", tok, err)
		}
		if _, tok, err := listSM(nil); err != nil || tok == nil || strings.HasPrefix(*tok, "awsemu-endless-") {
			t.Fatalf("after: %v %v", aws.ToString(tok), err)
		}
	})
}

// TestFaultHugeResponse reads a 64 MiB answer to the end: the server streams it
// (allocates far less than it sends), and only Times answers are huge.
func TestFaultHugeResponse(t *testing.T) {
	c := newClients(t, awsemu.Options{Seed: faultSeed()})
	if err := c.srv.InjectFault(awsemu.Fault{Op: "GetSecretValue", Kind: awsemu.FaultHugeResponse, Times: 1}); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp := rawPost(t, c.srv, "secretsmanager.GetSecretValue", `{"SecretId":"a"}`, nil)
	defer resp.Body.Close()
	head := make([]byte, 17)
	if _, err := io.ReadFull(resp.Body, head); err != nil || string(head) != `{"SecretString":"` {
		t.Fatalf("head %q, %v", head, err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	runtime.ReadMemStats(&after)
	if err != nil || resp.StatusCode != http.StatusOK || n+17 != awsemu.HugeResponseSize {
		t.Fatalf("status %d, %d bytes, %v", resp.StatusCode, n+17, err)
	}
	if resp.ContentLength != -1 {
		t.Fatalf("Content-Length %d: the body should be streamed", resp.ContentLength)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("allocated %d MiB to serve 64 MiB: not streamed", grew>>20)
	}
	out, err := c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("a")})
	if err != nil || aws.ToString(out.SecretString) != "1" {
		t.Fatalf("after the fault: %v", err)
	}

	t.Run("configured size through the control endpoint", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, c.srv.URL()+"/_emu/faults", strings.NewReader(`{"op":"ssm.GetParameter","kind":"huge-response","times":1,"size":3000000}`))
		r, err := http.DefaultClient.Do(req)
		if err != nil || r.StatusCode != http.StatusNoContent {
			t.Fatalf("inject: %v %v", r, err)
		}
		r.Body.Close()
		resp := rawPost(t, c.srv, "AmazonSSM.GetParameter", `{"Name":"/p/a"}`, nil)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || len(b) != 3000000 || !strings.HasSuffix(string(b), `AAA"}`) {
			t.Fatalf("%d bytes, %v", len(b), err)
		}
	})
	if err := c.srv.InjectFault(awsemu.Fault{Kind: awsemu.FaultHugeResponse, Size: -1}); err == nil {
		t.Fatal("negative size accepted")
	}
}

// TestFaultAmbiguousAnswers: an empty 200 and a 404 without an AWS error code, as
// the SDK sees them.
func TestFaultAmbiguousAnswers(t *testing.T) {
	c := newClients(t, awsemu.Options{Seed: faultSeed()})
	get := func() (*sm.GetSecretValueOutput, error) {
		return c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("a")})
	}
	t.Run("empty 200", func(t *testing.T) {
		if err := c.srv.InjectFault(awsemu.Fault{Op: "GetSecretValue", Kind: awsemu.FaultEmpty200, Times: 1}); err != nil {
			t.Fatal(err)
		}
		resp := rawPost(t, c.srv, "secretsmanager.GetSecretValue", `{"SecretId":"a"}`, nil)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || len(b) != 0 {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
		// The SDK takes it as a success with every field absent.
		if err := c.srv.InjectFault(awsemu.Fault{Op: "GetSecretValue", Kind: awsemu.FaultEmpty200, Times: 1}); err != nil {
			t.Fatal(err)
		}
		out, err := get()
		if err != nil || out.SecretString != nil || out.SecretBinary != nil {
			t.Fatalf("SDK: %+v %v", out, err)
		}
	})
	t.Run("404 without an error code", func(t *testing.T) {
		if err := c.srv.InjectFault(awsemu.Fault{Op: "GetSecretValue", Kind: awsemu.Fault404NoCode, Times: 1}); err != nil {
			t.Fatal(err)
		}
		resp := rawPost(t, c.srv, "secretsmanager.GetSecretValue", `{"SecretId":"a"}`, nil)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "<html>") || resp.Header.Get("X-Amzn-ErrorType") != "" {
			t.Fatalf("%d %q %v", resp.StatusCode, b, resp.Header)
		}
		if err := c.srv.InjectFault(awsemu.Fault{Op: "GetSecretValue", Kind: awsemu.Fault404NoCode, Times: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := get()
		var ae smithy.APIError
		if status(err) != 404 || (errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException") {
			t.Fatalf("SDK: status %d, %v", status(err), err)
		}
		if _, err := get(); err != nil {
			t.Fatalf("after the fault: %v", err)
		}
	})
}

// TestFaultOmitSelector: versioned and labelled reads are served, and the answers
// lose their Selector only while the fault is on.
func TestFaultOmitSelector(t *testing.T) {
	seed := faultSeed()
	seed.Parameters[0].Labels = []string{"stable"}
	c := newClients(t, awsemu.Options{Seed: seed})
	selectors := func() []string {
		out, err := c.ssm.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{"/p/a:1", "/p/b:1", "/p/a:stable", "/p/c"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Parameters) != 4 || len(out.InvalidParameters) != 0 {
			t.Fatalf("answer: %d parameters, invalid %v", len(out.Parameters), out.InvalidParameters)
		}
		var got []string
		for _, p := range out.Parameters {
			got = append(got, aws.ToString(p.Name)+"@"+aws.ToString(p.Value)+" "+aws.ToString(p.Selector))
		}
		slices.Sort(got)
		return got
	}
	tests := []struct {
		name  string
		fault bool
		want  []string
	}{
		{"without the fault", false, []string{"/p/a@1 :1", "/p/a@1 :stable", "/p/b@2 :1", "/p/c@3 "}},
		{"with the fault", true, []string{"/p/a@1 ", "/p/a@1 ", "/p/b@2 ", "/p/c@3 "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.srv.ClearFaults()
			if tc.fault {
				if err := c.srv.InjectFault(awsemu.Fault{Op: "GetParameters", Kind: awsemu.FaultOmitSelector}); err != nil {
					t.Fatal(err)
				}
			}
			if got := selectors(); !slices.Equal(got, tc.want) {
				t.Fatalf("name@value -> selectors = %v, want %v", got, tc.want)
			}
		})
	}
}
