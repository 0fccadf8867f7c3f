package sanitize_test

import (
	"fmt"

	"github.com/rlogin-go/rlogin/internal/sanitize"
)

func ExampleText() {
	// A user name sent by a peer that tries to clear the screen, spoof a
	// log line and reverse the text after it.
	user := "bob\x1b[2J\nlogin ok user=root \u202eexe.txt\xff"
	fmt.Println(sanitize.Text(user))
	fmt.Println(sanitize.Text("Jürgen"))
	// Output:
	// bob\x1b[2J\nlogin ok user=root \u202eexe.txt\xff
	// Jürgen
}
