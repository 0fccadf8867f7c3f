package admission_test

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
)

// A hard cap of one unauthenticated connection: the second client is told why it is dropped.
func ExampleLimiter() {
	lim, err := admission.NewLimiter(admission.Limits{
		LoginGraceTime: 10 * time.Second,
		MaxStartups:    admission.StartupLimit{Start: 1, Rate: 100, Full: 1},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	l := lim.Listener(raw)
	var accepting sync.WaitGroup
	defer accepting.Wait()
	defer l.Close() // ends the Accept below

	first, _ := net.Dial("tcp", raw.Addr().String())
	defer first.Close()
	c, _ := l.Accept()
	ac := admission.ConnOf(c)
	fmt.Println("unauthenticated:", lim.Unauthenticated())

	second, _ := net.Dial("tcp", raw.Addr().String())
	defer second.Close()
	accepting.Go(func() { // Accept drops the second client and waits for a third
		if c, err := l.Accept(); err == nil {
			_ = c.Close()
		}
	})
	_ = second.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, _ := bufio.NewReader(second).ReadString('\n')
	fmt.Printf("second client: %q\n", reply)

	ac.Authenticated()
	ac.StartSession()
	fmt.Println("unauthenticated:", lim.Unauthenticated())
	_ = c.Close()
	// Output:
	// unauthenticated: 1
	// second client: "-server busy: too many unauthenticated connections; try again later\r\n"
	// unauthenticated: 0
}

func ExampleParseStartupLimit() {
	l, err := admission.ParseStartupLimit("10:30:100")
	fmt.Println(l.Start, l.Rate, l.Full, err)
	hard, _ := admission.ParseStartupLimit("20")
	fmt.Println(hard)
	// Output:
	// 10 30 100 <nil>
	// 20:100:20
}

func ExampleParsePenalties() {
	p, err := admission.ParsePenalties("authfail:30s max:1h")
	fmt.Println(p, err)
	off, _ := admission.ParsePenalties("off")
	fmt.Println(off)
	// Output:
	// authfail:30s noauth:1s grace-exceeded:10s max:1h0m0s min:15s max-sources:65536 <nil>
	// off
}
