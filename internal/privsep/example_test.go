package privsep_test

import (
	"fmt"

	"github.com/rlogin-go/rlogin/internal/privsep"
)

// A net child asks for a password prompt's answer to be checked: the two ends of a socketpair,
// in one process here.
func Example() {
	monitorEnd, netEnd, err := privsep.Pair()
	if err != nil {
		fmt.Println(err)
		return
	}
	monitor, err := privsep.NewFileChannel(monitorEnd, privsep.MonitorSide)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer monitor.Close()
	child, err := privsep.NewFileChannel(netEnd, privsep.NetSide)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer child.Close()

	_ = monitor.Send(&privsep.Prompt{Text: "Password: "})
	m, _, _ := child.Receive()
	fmt.Printf("net child shows %q\n", m.(*privsep.Prompt).Text)

	_ = child.Send(&privsep.Answer{Text: "secret"})
	m, _, _ = monitor.Receive()
	fmt.Printf("monitor checks an answer of %d bytes\n", len(m.(*privsep.Answer).Text))

	// A reply the net child may not send never leaves it.
	err = child.Send(&privsep.Refuse{Reason: "no"})
	fmt.Println(err)
	// Output:
	// net child shows "Password: "
	// monitor checks an answer of 6 bytes
	// privsep: send: REFUSE may not be sent from this side
}
