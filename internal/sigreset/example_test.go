package sigreset_test

import (
	"log"

	"github.com/rlogin-go/rlogin/internal/sigreset"
)

// Reset is the first thing a daemon's main does, before it starts anything it
// would not want to do twice (Reset may re-execute the program).
func ExampleReset() {
	if err := sigreset.Reset(); err != nil {
		log.Printf("rlogind: %v", err) // children may inherit ignored or blocked signals
	}
	// ... the daemon proper ...
}
