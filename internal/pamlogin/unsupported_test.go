//go:build !(pam && cgo && linux)

package pamlogin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/pamlogin"
)

func TestUnsupportedSaysHowToBuild(t *testing.T) {
	_, err := pamlogin.Authenticate(context.Background(), pamlogin.Config{User: "alice"}, nil)
	if !errors.Is(err, pamlogin.ErrUnsupported) {
		t.Fatalf("Authenticate: %v, want ErrUnsupported", err)
	}
	if _, err := pamlogin.Account(context.Background(), pamlogin.Config{User: "alice"}, nil); !errors.Is(err, pamlogin.ErrUnsupported) {
		t.Errorf("Account: %v, want ErrUnsupported", err)
	}
	for _, want := range []string{"go build -tags pam ./cmd/rlogind", "libpam0g-dev", "gcc"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}
