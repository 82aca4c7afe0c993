package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestExamples runs every example's run.sh end to end (each exits non-zero
// on failure) with the sixgate binary built for the tests. The benchmark
// harness is not an example to run here: it takes minutes.
func TestExamples(t *testing.T) {
	scripts, _ := filepath.Glob("../../examples/*/run.sh")
	if len(scripts) == 0 {
		t.Fatal("no examples found")
	}
	for _, s := range scripts {
		name := filepath.Base(filepath.Dir(s))
		if name == "benchmarks" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command("bash", s)
			cmd.Env = append(os.Environ(), "SIXGATE_BIN="+binPath)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", s, err, out)
			}
			t.Logf("%s", out)
		})
	}
}

// TestQuickstartValid checks the README's first command's config.
func TestQuickstartValid(t *testing.T) {
	out, err := exec.Command(binPath, "validate", "--config", "../../examples/quickstart.hcl").CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart.hcl: %v\n%s", err, out)
	}
}
