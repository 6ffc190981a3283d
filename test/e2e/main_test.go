package e2e

import (
	"os"
	"testing"
)

// TestMain stops the environments that tests share (see Shared) once every test
// has run, and fails the run if one of them could not be stopped cleanly.
func TestMain(m *testing.M) {
	code := m.Run()
	if !StopShared() && code == 0 {
		code = 1
	}
	os.Exit(code)
}
