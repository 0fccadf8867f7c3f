package usershell_test

import (
	"fmt"
	"strings"

	"github.com/rlogin-go/rlogin/internal/usershell"
)

func ExampleEnv() {
	env := usershell.Env("alice", "/home/alice", "/bin/bash", "xterm", []string{"LANG=C.UTF-8"})
	fmt.Println(strings.Join(env, "\n"))
	// Output:
	// HOME=/home/alice
	// USER=alice
	// LOGNAME=alice
	// SHELL=/bin/bash
	// PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games
	// TERM=xterm
	// LANG=C.UTF-8
}
