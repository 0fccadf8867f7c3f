package inetd_test

import (
	"fmt"
	"os"

	"github.com/rlogin-go/rlogin/internal/inetd"
)

// Run by hand from a terminal, standard input is no socket: a service says so and stops.
func Example() {
	r, w, err := os.Pipe() // stands in for a standard input that is not a socket
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	defer w.Close()
	conn, err := inetd.Conn(r)
	if err != nil {
		fmt.Println("not started by inetd")
		return
	}
	defer conn.Close()
	// Output: not started by inetd
}
