package systemlogin_test

import (
	"fmt"
	"net"

	"github.com/rlogin-go/rlogin/internal/systemlogin"
)

func ExamplePeerHost() {
	fmt.Printf("%q\n", systemlogin.PeerHost(&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1022}))
	fmt.Printf("%q\n", systemlogin.PeerHost(&net.UnixAddr{Name: "/run/rlogind.sock", Net: "unix"}))
	// Output:
	// "192.0.2.7"
	// ""
}

func ExampleUser_AuthorizedKeysPath() {
	u := &systemlogin.User{Name: "alice", UID: 1000, Home: "/home/alice"}
	fmt.Println(u.AuthorizedKeysPath("~/.rlogin/authorized_keys"))
	fmt.Println(u.AuthorizedKeysPath("/etc/rlogin/keys/%u"))
	// Output:
	// /home/alice/.rlogin/authorized_keys
	// /etc/rlogin/keys/alice
}
