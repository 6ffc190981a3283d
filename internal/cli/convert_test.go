package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestConvertGolden converts every ESO manifest of testdata/convert/*.yaml and
// compares stdout, stderr and the exit code with the golden files beside it.
func TestConvertGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/convert/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(context.Background(), []string{"convert", "-f", in}, nil, &out, &errOut)
			got := out.String() + "\n# ---- stderr (exit " + string(rune('0'+code)) + ") ----\n" + errOut.String()
			golden := filepath.Join("testdata", "convert", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update and review the diff):\n%s", golden, got)
			}
			wantCode := ExitOK
			if name == "unsupported" {
				wantCode = ExitProblem
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
		})
	}
}

// TestConvertStdin reads from "-" and reports usage errors with exit 2.
func TestConvertStdin(t *testing.T) {
	in, _ := os.ReadFile("testdata/convert/clusterexternalsecrets.yaml")
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"convert", "-f", "-"}, bytes.NewReader(in), &out, &errOut); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "kind: ClusterExternalSecret") {
		t.Fatalf("no output:\n%s", out.String())
	}
	for _, args := range [][]string{{"convert"}, {"convert", "-f", "x", "extra"}, {"nope"}, {"convert", "--bogus"}} {
		out.Reset()
		errOut.Reset()
		if code := Run(context.Background(), args, nil, &out, &errOut); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, errOut.String())
		}
	}
}
