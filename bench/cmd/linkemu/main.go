// Command linkemu is a TCP proxy that emulates a network path (the package internal/linkemu of
// this repository): one-way delay, jitter and a bandwidth cap in each direction, for trying
// rlogin, ssh or anything on TCP by hand as if across a long link. It needs no root.
//
//	go run ./cmd/linkemu -listen 127.0.0.1:2222 -to 127.0.0.1:22 -delay 50ms -rate 20mbit
//	ssh -p 2222 localhost   # a 100 ms round trip, 20 Mbit/s each way
//
// It runs until interrupted (SIGINT or SIGTERM), then resets the connections through it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rlogin-go/rlogin/internal/linkemu"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err) // the package's errors and run's own say "linkemu: " already
		os.Exit(2)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("linkemu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on, host:port (port 0 picks one)")
	to := fs.String("to", "", "upstream address to forward to, host:port (required)")
	delay := fs.Duration("delay", 0, "one-way delay added to each direction (the round trip grows by twice it)")
	jitter := fs.Duration("jitter", 0, "random extra delay per chunk, in [0, jitter); never reorders a stream")
	rate := fs.String("rate", "0", "bandwidth cap of each direction, in bits per second: 20mbit, 500kbit, 1gbit; 0 is none")
	queue := fs.Int("queue", 0, "bottleneck queue of each direction in bytes, with -rate; 0 is 100 ms of the rate, at least 16 KiB")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("linkemu: %w", err)
	}
	if *to == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("linkemu: want -to host:port and no arguments")
	}
	bits, err := linkemu.ParseRate(*rate)
	if err != nil {
		return err
	}
	p := linkemu.Profile{Delay: *delay, Jitter: *jitter, Rate: bits, Queue: *queue}
	proxy, err := linkemu.New(p).Listen(*listen, *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "linkemu: %s -> %s: %v\n", proxy.Addr(), *to, p)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return proxy.Close()
}
