package awsemu_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/secretsync/secretsync/test/awsemu"
)

const sigv4 = "AWS4-HMAC-SHA256 Credential=" + awsemu.DefaultAccessKeyID + "/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"

func TestSigV4HeadersRequired(t *testing.T) {
	srv := awsemu.NewTestServer(t, awsemu.Options{})
	tests := []struct {
		name   string
		hdr    map[string]string
		want   string
		status int
	}{
		{"unsigned", nil, "MissingAuthenticationTokenException", 400},
		{"no date", map[string]string{"Authorization": sigv4}, "IncompleteSignatureException", 400},
		{"other algorithm", map[string]string{"Authorization": "Bearer x", "X-Amz-Date": "20260101T000000Z"}, "IncompleteSignatureException", 400},
		{"wrong service scope", map[string]string{"Authorization": strings.Replace(sigv4, "/secretsmanager/", "/ssm/", 1), "X-Amz-Date": "20260101T000000Z"}, "InvalidSignatureException", 400},
		{"unknown key", map[string]string{"Authorization": strings.Replace(sigv4, awsemu.DefaultAccessKeyID, "AKIAOTHER", 1), "X-Amz-Date": "20260101T000000Z"}, "UnrecognizedClientException", 400},
		{"signed", map[string]string{"Authorization": sigv4, "X-Amz-Date": "20260101T000000Z"}, "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := rawPost(t, srv, "secretsmanager.ListSecrets", "{}", tc.hdr)
			defer resp.Body.Close()
			var body struct {
				Type string `json:"__type"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if resp.StatusCode != tc.status || body.Type != tc.want {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body.Type, tc.status, tc.want)
			}
		})
	}
	t.Run("unknown operation", func(t *testing.T) {
		resp := rawPost(t, srv, "secretsmanager.Frobnicate", "{}", map[string]string{"Authorization": sigv4, "X-Amz-Date": "20260101T000000Z"})
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "UnknownOperationException") {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
}

func TestCountersAndFaults(t *testing.T) {
	c := newClients(t, awsemu.Options{Seed: &awsemu.Seed{
		Secrets:    []awsemu.SeedSecret{{Name: "s", Value: aws.String("v")}},
		Parameters: []awsemu.SeedParameter{{Name: "/p", Value: "v"}},
	}})
	get := func() error {
		_, err := c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("s")})
		return err
	}
	getParam := func() error {
		_, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/p")})
		return err
	}

	for i := 0; i < 3; i++ {
		if err := get(); err != nil {
			t.Fatal(err)
		}
	}
	if err := getParam(); err != nil {
		t.Fatal(err)
	}
	if c.srv.Calls("GetSecretValue") != 3 || c.srv.Calls("secretsmanager.GetSecretValue") != 3 || c.srv.Calls("ssm.GetParameter") != 1 || c.srv.TotalCalls() != 4 {
		t.Fatalf("counts: %v", c.srv.CallCounts())
	}
	c.srv.ResetCalls()
	if c.srv.Calls("GetSecretValue") != 0 || c.srv.TotalCalls() != 0 {
		t.Fatalf("after reset: %v", c.srv.CallCounts())
	}

	tests := []struct {
		name   string
		fault  awsemu.Fault
		call   func() error
		code   string
		status int
	}{
		{"throttle SM", awsemu.Fault{Op: "GetSecretValue", Kind: awsemu.FaultThrottle, Times: 1}, get, "ThrottlingException", 400},
		{"throttle SSM", awsemu.Fault{Op: "ssm.GetParameter", Kind: awsemu.FaultThrottle, Times: 1}, getParam, "ThrottlingException", 400},
		{"5xx SM", awsemu.Fault{Kind: awsemu.FaultServerError, Times: 1}, get, "InternalServiceError", 500},
		{"5xx SSM", awsemu.Fault{Kind: awsemu.FaultServerError, Times: 1}, getParam, "InternalServerError", 500},
		{"503", awsemu.Fault{Kind: awsemu.FaultUnavailable, Times: 1}, get, "ServiceUnavailable", 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.srv.InjectFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			err := tc.call()
			wantCode(t, err, tc.code)
			if status(err) != tc.status {
				t.Fatalf("status = %d, want %d", status(err), tc.status)
			}
			if err := tc.call(); err != nil { // Times: 1 — the next call succeeds
				t.Fatalf("second call: %v", err)
			}
		})
	}

	t.Run("fault on another op does not apply", func(t *testing.T) {
		if err := c.srv.InjectFault(awsemu.Fault{Op: "ListSecrets", Kind: awsemu.FaultThrottle}); err != nil {
			t.Fatal(err)
		}
		defer c.srv.ClearFaults()
		if err := get(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("outage closes connections until cleared", func(t *testing.T) {
		if err := c.srv.InjectFault(awsemu.Fault{Kind: awsemu.FaultClose}); err != nil {
			t.Fatal(err)
		}
		err := get()
		var ae interface{ ErrorCode() string }
		if err == nil || errors.As(err, &ae) {
			t.Fatalf("want a transport error, got %v", err)
		}
		if err := get(); err == nil {
			t.Fatal("outage ended early")
		}
		c.srv.ClearFaults()
		if err := get(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("latency", func(t *testing.T) {
		c.srv.SetLatency("GetSecretValue", 80*time.Millisecond)
		start := time.Now()
		if err := get(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 80*time.Millisecond {
			t.Fatalf("took %v", d)
		}
		c.srv.SetLatency("GetSecretValue", 0)
		start = time.Now()
		if err := getParam(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 70*time.Millisecond {
			t.Fatalf("latency leaked to other ops: %v", d)
		}
	})
	if err := c.srv.InjectFault(awsemu.Fault{Kind: "melt"}); err == nil {
		t.Fatal("unknown fault kind accepted")
	}
}

func TestControlEndpointsAndSeedFile(t *testing.T) {
	dir := t.TempDir()
	seedPath := filepath.Join(dir, "seed.json")
	err := os.WriteFile(seedPath, []byte(`{
	  "secrets": [{"name": "prod/db", "value": "{\"password\":\"pw\"}", "tags": {"team": "a"}},
	              {"name": "prod/cert", "binaryBase64": "AAEC/w=="}],
	  "parameters": [{"name": "/prod/pw", "type": "SecureString", "value": "s3", "labels": ["live"]}]
	}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := awsemu.LoadSeed(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	c := newClients(t, awsemu.Options{Seed: seed})
	bin := must[*sm.GetSecretValueOutput](t)(c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("prod/cert")}))
	if string(bin.SecretBinary) != "\x00\x01\x02\xff" {
		t.Fatalf("binary = %v", bin.SecretBinary)
	}
	p := must[*ssm.GetParameterOutput](t)(c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/prod/pw:live"), WithDecryption: aws.Bool(true)}))
	if aws.ToString(p.Parameter.Value) != "s3" {
		t.Fatalf("param = %q", aws.ToString(p.Parameter.Value))
	}

	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), method, c.srv.URL()+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := do("GET", "/_emu/calls?op=GetSecretValue", ""); st != 200 || !strings.Contains(body, `"calls":1`) {
		t.Fatalf("calls: %d %s", st, body)
	}
	if st, _ := do("POST", "/_emu/faults", `{"op":"GetSecretValue","kind":"throttle","times":1}`); st != 204 {
		t.Fatalf("faults: %d", st)
	}
	_, err = c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("prod/db")})
	wantCode(t, err, "ThrottlingException")
	if st, _ := do("POST", "/_emu/seed", `{"secrets":[{"name":"late","value":"x"}]}`); st != 204 {
		t.Fatalf("seed: %d", st)
	}
	must[*sm.GetSecretValueOutput](t)(c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("late")}))
	if st, _ := do("POST", "/_emu/latency", `{"op":"","duration":"1ms"}`); st != 204 {
		t.Fatalf("latency: %d", st)
	}
	if st, _ := do("DELETE", "/_emu/calls", ""); st != 204 || c.srv.TotalCalls() != 0 {
		t.Fatalf("reset: %d %v", st, c.srv.CallCounts())
	}
	if st, _ := do("POST", "/_emu/faults", `{"kind":"nope"}`); st != 400 {
		t.Fatalf("bad fault: %d", st)
	}
	if st, body := do("GET", "/_emu/health", ""); st != 200 || body != "ok" {
		t.Fatalf("health: %d %s", st, body)
	}
}

// TestConcurrentUse hammers the server from many goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := aws.String("c/" + string(rune('a'+g)))
			if _, err := c.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: name, SecretString: aws.String("0")}); err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < 50; i++ {
				if _, err := c.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: name, SecretString: aws.String("x")}); err != nil {
					t.Error(err)
				}
				if _, err := c.sm.ListSecrets(ctx, &sm.ListSecretsInput{MaxResults: aws.Int32(3)}); err != nil {
					t.Error(err)
				}
				if _, err := c.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/c/p"), Value: aws.String("v"), Type: "String", Overwrite: aws.Bool(true)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := c.srv.Calls("PutSecretValue"); n != 400 {
		t.Fatalf("PutSecretValue calls = %d", n)
	}
}

// BenchmarkGetSecretValue measures raw server throughput (signed-looking requests,
// keep-alive connections, parallel clients).
func BenchmarkGetSecretValue(b *testing.B) {
	srv := awsemu.New(awsemu.Options{Seed: &awsemu.Seed{Secrets: []awsemu.SeedSecret{{Name: "bench", Value: aws.String(`{"k":"v"}`)}}}})
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequestWithContext(b.Context(), http.MethodPost, srv.URL()+"/", strings.NewReader(`{"SecretId":"bench"}`))
			req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("Authorization", sigv4)
			req.Header.Set("X-Amz-Date", "20260101T000000Z")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

// TestAccessKeyRotation: a created key works next to the configured one, and a
// deactivated key is refused as AWS refuses an inactive one.
func TestAccessKeyRotation(t *testing.T) {
	srv := awsemu.NewTestServer(t, awsemu.Options{})
	newKey, _ := srv.CreateAccessKey()
	call := func(akid string) string {
		t.Helper()
		hdr := map[string]string{"Authorization": strings.Replace(sigv4, awsemu.DefaultAccessKeyID, akid, 1), "X-Amz-Date": "20260101T000000Z"}
		resp := rawPost(t, srv, "secretsmanager.ListSecrets", "{}", hdr)
		defer resp.Body.Close()
		var body struct {
			Type string `json:"__type"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return body.Type
	}
	steps := []struct {
		name      string
		do        func()
		akid      string
		wantError string
	}{
		{"configured key", func() {}, awsemu.DefaultAccessKeyID, ""},
		{"created key", func() {}, newKey, ""},
		{"old key deactivated", func() { srv.DeactivateAccessKey(awsemu.DefaultAccessKeyID) }, awsemu.DefaultAccessKeyID, "UnrecognizedClientException"},
		{"new key still works", func() {}, newKey, ""},
		{"new key deactivated", func() { srv.DeactivateAccessKey(newKey) }, newKey, "UnrecognizedClientException"},
	}
	for _, st := range steps {
		st.do()
		if got := call(st.akid); got != st.wantError {
			t.Fatalf("%s: error %q, want %q", st.name, got, st.wantError)
		}
	}
}
