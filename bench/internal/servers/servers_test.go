package servers

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestModulePath(t *testing.T) {
	for _, tc := range []struct{ gomod, want string }{
		{"module github.com/rlogin-go/rlogin\n\ngo 1.26\n", "github.com/rlogin-go/rlogin"},
		{"// a comment\nmodule \"github.com/rlogin-go/rlogin/bench\"\n", "github.com/rlogin-go/rlogin/bench"},
		{"\tmodule\tgithub.com/x/y // trailing\n", "github.com/x/y"},
		{"modules x\n", ""},
		{"go 1.26\n", ""},
	} {
		if got := modulePath([]byte(tc.gomod)); got != tc.want {
			t.Errorf("modulePath(%q) = %q, want %q", tc.gomod, got, tc.want)
		}
	}
}

// TestModuleRoot finds the product's module from bench's own directory, past bench/go.mod.
func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot() // the working directory is this package's: bench/internal/servers
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Dir(filepath.Dir(filepath.Dir(wd))); root != want {
		t.Errorf("ModuleRoot() = %s, want %s", root, want)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "rlogind")); err != nil {
		t.Errorf("no cmd/rlogind in the module root: %v", err)
	}
}
