package systemd_test

import (
	"fmt"
	"os"

	"github.com/rlogin-go/rlogin/internal/systemd"
)

// A service serves the sockets systemd passed it, and tells systemd when it is ready; outside
// systemd there are none, and the notifications go nowhere.
func Example() {
	ls, names, err := systemd.Listeners(os.Getenv, os.Getpid(), systemd.ListenFDsStart)
	if err != nil {
		fmt.Println(err)
		return
	}
	n := systemd.NewNotifier()
	n.Send(systemd.Ready + "\nSTATUS=serving")
	fmt.Println(len(ls), "sockets passed", names)
	n.Send(systemd.Stopping)
	// Output: 0 sockets passed []
}
