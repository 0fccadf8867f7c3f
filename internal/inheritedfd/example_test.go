package inheritedfd_test

import (
	"log"
	"os"

	"github.com/rlogin-go/rlogin/internal/inheritedfd"
	"github.com/rlogin-go/rlogin/internal/systemd"
)

// A daemon closes what it inherited before it starts anything, keeping the sockets systemd
// passed it (none outside systemd).
func ExampleClose() {
	n := systemd.ListenFDs(os.Getenv, os.Getpid())
	if err := inheritedfd.Close(inheritedfd.Range(systemd.ListenFDsStart, n)...); err != nil {
		log.Printf("rlogind: %v", err)
	}
	// ... the daemon proper: no program it starts inherits a descriptor it did ...
}
