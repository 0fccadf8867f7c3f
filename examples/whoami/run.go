package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/transport"
)

// Mailbox is the name the service answers to.
const Mailbox = "whoami"

// A config says where the trust files are.
type config struct {
	dir  string // the files' directory
	home string // the user's home: authorized_keys' directories are checked up to it
}

func (c config) hostKey() string        { return filepath.Join(c.dir, "whoami_host_ed25519_key") }
func (c config) authorizedKeys() string { return filepath.Join(c.dir, "authorized_keys") }
func (c config) userKey() string        { return filepath.Join(c.dir, "id_ed25519") }

func (c config) knownHosts() *keys.KnownHosts {
	return &keys.KnownHosts{Path: filepath.Join(c.dir, "known_hosts")}
}

// run parses the command line and serves or asks until ctx ends.
func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("whoami", flag.ContinueOnError)
	serve := fs.Bool("serve", false, "serve the mailbox "+Mailbox)
	addr := fs.String("addr", "localhost:5514", "address to serve on or to ask (any form of transport.Dial)")
	dir := fs.String("dir", "", "directory of the keys and trust files (default ~/.rlogin)")
	acceptNew := fs.Bool("accept-new", false, "trust a server not in known_hosts yet, and add its key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return err
	}
	cfg := config{dir: *dir, home: home}
	if cfg.dir == "" {
		cfg.dir = filepath.Join(home, ".rlogin")
	}
	if *serve {
		return runServer(ctx, cfg, *addr, os.Stderr)
	}
	return runClient(ctx, cfg, *addr, *acceptNew, os.Stdout, os.Stderr)
}

// runServer serves on addr until ctx ends.
func runServer(ctx context.Context, cfg config, addr string, logTo io.Writer) error {
	srv, err := newServer(cfg)
	if err != nil {
		return err
	}
	ln, err := transport.Listen(ctx, addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(logTo, "whoami: serving %q on %s, host key %s\n", Mailbox, ln.Addr(), keys.Fingerprint(srv.hostPublic()))
	return srv.serve(ctx, ln)
}

// runClient asks the server at addr and prints its answer.
func runClient(ctx context.Context, cfg config, addr string, acceptNew bool, out, notes io.Writer) error {
	key, _, err := keys.LoadOrCreate(cfg.userKey())
	if err != nil {
		return err
	}
	c := &client{key: key, known: cfg.knownHosts(), acceptNew: acceptNew, notes: notes}
	answer, err := c.ask(ctx, addr)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, answer)
	return err
}
