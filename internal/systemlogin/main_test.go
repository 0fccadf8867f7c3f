package systemlogin

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shortTimeout bounds every single wait in these tests: a wait that needs longer is a failure.
const shortTimeout = logintest.Timeout

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	termtest.WaitFor(t, shortTimeout, what, cond)
}
