package termtest_test

import (
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/rlogin-go/rlogin/internal/termtest"
)

func ExampleBuffer_Expect() {
	r, w := io.Pipe() // stands for a pty master
	var out termtest.Buffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&out, r)
	}()
	go func() {
		_, _ = io.WriteString(w, "login: ok\r\nsum=42\r\n$ ")
		_ = w.Close()
	}()

	mark := 0
	match, ok := out.Expect(&mark, regexp.MustCompile(`sum=(\d+)`), 10*time.Second)
	fmt.Println(match, ok)
	_, ok = out.Expect(&mark, regexp.MustCompile(`\$ $`), 10*time.Second) // the prompt, after the sum
	fmt.Println(ok)
	<-copied
	// Output:
	// [sum=42 42] true
	// true
}
