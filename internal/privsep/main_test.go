package privsep

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if scenario := os.Getenv(childEnv); scenario != "" {
		os.Exit(runChild(scenario)) // this process is a net child the tests started
	}
	goleak.VerifyTestMain(m)
}
