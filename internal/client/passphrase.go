package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// TTYPassphrase asks for a key's passphrase on a terminal device, by default the controlling
// terminal /dev/tty, with echo off (as ssh does): the passphrase never mixes with standard input
// and output, and never shows on the screen. It is a Prompter.
type TTYPassphrase struct {
	Path string // "" means /dev/tty
}

// Prompt writes question to the terminal and reads one line from it without echo. An error wraps
// ErrNoTerminal when there is no terminal to ask on.
func (p TTYPassphrase) Prompt(question string) (string, error) {
	tty, err := openTTY(p.Path)
	if err != nil {
		return "", err
	}
	defer tty.Close()
	fd := int(tty.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrNoTerminal, tty.Name(), err)
	}
	// Echo goes off before the question shows, so nothing typed after it can echo (as ssh's
	// readpassphrase); a line is still a line (canonical mode), and ^C still interrupts.
	noEcho := *saved
	noEcho.Lflag &^= unix.ECHO | unix.ECHOE | unix.ECHOK
	noEcho.Lflag |= unix.ICANON | unix.ECHONL
	stop := echoBackOnSignal(fd, saved)
	defer stop()
	if err := unix.IoctlSetTermios(fd, unix.TCSETSW, &noEcho); err != nil {
		return "", fmt.Errorf("client: prompt: %w", err)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETSW, saved) }() // best effort: see echoBackOnSignal
	if _, err := io.WriteString(tty, question); err != nil {
		return "", fmt.Errorf("client: prompt: %w", err)
	}
	return readLine(tty)
}

// openTTY opens the terminal device at path ("" means /dev/tty) to ask a question on; the error
// wraps ErrNoTerminal.
func openTTY(path string) (*os.File, error) {
	if path == "" {
		path = "/dev/tty"
	}
	tty, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoTerminal, err)
	}
	return tty, nil
}

// readLine reads one line from a terminal in canonical mode, without its line end.
func readLine(tty io.Reader) (string, error) {
	// One read returns one line in canonical mode; keep reading in case it does not, until the
	// line ends. A human types this: small reads are fine.
	var line []byte
	buf := make([]byte, 256)
	for {
		n, err := tty.Read(buf)
		line = append(line, buf[:n]...)
		if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
			return string(line[:i]), nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return string(line), nil
			}
			return "", fmt.Errorf("client: prompt: %w", err)
		}
		if n == 0 || len(line) > 4096 {
			return "", fmt.Errorf("client: prompt: %w", io.EOF)
		}
	}
}

// echoBackOnSignal puts the terminal fd back as saved if a signal that ends rlogin arrives
// while echo is off, then lets the signal end rlogin as it would have: without this, ^C at the
// passphrase question would leave the user's shell without echo. stop ends the watch and waits
// for its goroutine.
func echoBackOnSignal(fd int, saved *unix.Termios) (stop func()) {
	sigs := make(chan os.Signal, 1)
	for _, sig := range []os.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM} {
		if !signal.Ignored(sig) { // one ignored at start (nohup) stays so, as in interact
			signal.Notify(sigs, sig)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case sig := <-sigs:
			_ = unix.IoctlSetTermios(fd, unix.TCSETS, saved) // best effort: we are ending anyway
			signal.Reset(sig)
			_ = unix.Kill(unix.Getpid(), sig.(syscall.Signal))
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		wg.Wait()
	}
}
