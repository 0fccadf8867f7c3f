package rhosts

import (
	"testing"

	"go.uber.org/goleak"
)

// Check's name lookups may start the resolver's goroutines: none may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
