package hostconfig_test

import (
	"fmt"
	"log"

	"github.com/rlogin-go/rlogin/internal/client/hostconfig"
)

func ExampleSettings_Apply() {
	user, err := hostconfig.Parse("~/.rlogin/config", []byte(`
Host web
    HostName web1.example.test
    IdentityFile ~/.ssh/id_work
Host *
    User alice
    Port 5514
`))
	if err != nil {
		log.Fatal(err)
	}
	system, err := hostconfig.Parse("/etc/rlogin/rlogin_config", []byte("User nobody\nConnectTimeout 5\n"))
	if err != nil {
		log.Fatal(err)
	}
	s := hostconfig.Settings{Port: 6000} // the command line's -p: set first, so it wins
	if err := s.Apply("web", hostconfig.Tokens{Home: "/home/alice", LocalUser: "alice"}, user, system); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.HostName, s.User, s.Port, s.IdentityFile, s.ConnectTimeout)

	_, err = hostconfig.Parse("config", []byte("Host *\n  ForwardAgent 30\n"))
	fmt.Println(err)
	// Output:
	// web1.example.test alice 6000 /home/alice/.ssh/id_work 5s
	// hostconfig: config:2: unknown keyword "ForwardAgent" (rlogin knows Host, Match, HostName, User, Port, IdentityFile, CertificateFile, EscapeChar, ConnectTimeout, ServerAliveInterval, ServerAliveCountMax, Resume)
}
