package pipes_test

import (
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/rlogin-go/rlogin/internal/pipes"
)

func Example() {
	c, err := pipes.Start(exec.Command("/bin/sh", "-c", "tr a-z A-Z"))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = c.Write([]byte("hello\n"))
	_ = c.SendEOF() // the command reads end of file
	var out []byte
	buf := make([]byte, 512)
	for {
		n, _, err := c.ReadOutput(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			break
		}
	}
	st, _ := c.Wait()
	_ = c.Close()
	_ = c.End(5 * time.Second)
	fmt.Printf("%s%d\n", out, st.ExitCode())
	// Output:
	// HELLO
	// 0
}
