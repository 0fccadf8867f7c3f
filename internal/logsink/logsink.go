// Package logsink sets up a daemon's log (log/slog) where an administrator expects it: a log
// file that logrotate can move, syslog when standard error is an inetd connection, the systemd
// journal with a priority on each line, or plain standard error.
//
// Typical usage:
//
//	sink, err := logsink.Open(logsink.Options{Level: slog.LevelInfo, Format: "text"}, os.Stderr, false)
//	if err != nil {
//		return err
//	}
//	defer sink.Close()
//	log := sink.Logger()
//	log.Info("serving")
//	...
//	sink.SetLevel(slog.LevelDebug) // on reload; loggers made before follow
//	_ = sink.Reopen()              // on SIGHUP, after logrotate moved the file
package logsink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The log goes, in this order of preference:
//   - to a log file (Options.File), with timestamps;
//   - in -inetd mode when standard error is the connection itself (inetd makes descriptors 0,
//     1 and 2 the socket): to syslog (facility auth), or nowhere if syslog is not running;
//   - to standard error: when that is the systemd journal (JOURNAL_STREAM names it) without
//     timestamps (the journal has its own) and with a "<N>" priority prefix on each line, so
//     that `journalctl -p warning` works; otherwise with timestamps.

// Options say what to log and where.
type Options struct {
	// Level is the least level logged.
	Level slog.Level
	// Format is "text" (slog.TextHandler) or "json" (slog.JSONHandler); "" is text.
	Format string
	// File, if not "", is the path of a file the log is appended to (created with mode 0600).
	File string
}

// A Sink is where the log goes. Its methods may be called concurrently with logging.
type Sink struct {
	logger *slog.Logger
	level  *slog.LevelVar
	file   *reopenFile // Options.File, else nil
	closer io.Closer   // syslog, else nil
}

// Open sets up the log as o asks, in the order of preference above. stderrIsConn is true for
// an inetd service whose standard error is the connection. The caller must Close the Sink.
func Open(o Options, stderr io.Writer, stderrIsConn bool) (*Sink, error) {
	ls := &Sink{level: new(slog.LevelVar)}
	ls.level.Set(o.Level)
	noTime := func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	newHandler := func(w io.Writer, dropTime bool) slog.Handler {
		opts := &slog.HandlerOptions{Level: ls.level}
		if dropTime {
			opts.ReplaceAttr = noTime
		}
		if o.Format == "json" {
			return slog.NewJSONHandler(w, opts)
		}
		return slog.NewTextHandler(w, opts)
	}
	switch {
	case o.File != "":
		f, err := openReopenFile(o.File)
		if err != nil {
			return nil, err
		}
		ls.file = f
		ls.logger = slog.New(newHandler(f, false))
	case stderrIsConn:
		w, err := syslog.New(syslog.LOG_AUTH|syslog.LOG_INFO, "rlogind")
		if err != nil {
			ls.logger = slog.New(slog.DiscardHandler) // no syslog daemon: nowhere to log
			break
		}
		ls.closer = w
		ls.logger = slog.New(newLineHandler(newHandler, func(l slog.Level, line []byte) error {
			msg := strings.TrimSuffix(string(line), "\n")
			switch {
			case l >= slog.LevelError:
				return w.Err(msg)
			case l >= slog.LevelWarn:
				return w.Warning(msg)
			case l >= slog.LevelInfo:
				return w.Info(msg)
			}
			return w.Debug(msg)
		}))
	case isJournal(stderr, os.Getenv("JOURNAL_STREAM")):
		ls.logger = slog.New(newLineHandler(newHandler, func(l slog.Level, line []byte) error {
			_, err := stderr.Write(append([]byte("<"+strconv.Itoa(syslogPriority(l))+">"), line...))
			return err
		}))
	default:
		ls.logger = slog.New(newHandler(stderr, false))
	}
	return ls, nil
}

// Logger returns the logger that writes to the sink.
func (ls *Sink) Logger() *slog.Logger { return ls.logger }

// SetLevel changes the least level logged, for every logger of the sink.
func (ls *Sink) SetLevel(l slog.Level) { ls.level.Set(l) }

// FileFD returns the descriptor of the log file now open, or -1 if the log goes elsewhere. It
// stays valid until the next Reopen or Close.
func (ls *Sink) FileFD() int {
	if ls.file == nil {
		return -1
	}
	return ls.file.fd()
}

// Reopen reopens the log file (after logrotate moved it), if there is one.
func (ls *Sink) Reopen() error {
	if ls.file == nil {
		return nil
	}
	return ls.file.reopen()
}

// Close closes the log file or the syslog connection.
func (ls *Sink) Close() error {
	if ls.file != nil {
		return ls.file.Close()
	}
	if ls.closer != nil {
		return ls.closer.Close()
	}
	return nil
}

// syslogPriority maps a level to a syslog priority: debug 7, info 6, warning 4, error 3.
func syslogPriority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// isJournal reports whether w is standard error connected to the systemd journal: systemd
// sets JOURNAL_STREAM to "device:inode" of that stream.
func isJournal(w io.Writer, journalStream string) bool {
	f, ok := w.(*os.File)
	if !ok || journalStream == "" {
		return false
	}
	dev, ino, ok := strings.Cut(journalStream, ":")
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return strconv.FormatUint(uint64(st.Dev), 10) == dev && strconv.FormatUint(uint64(st.Ino), 10) == ino
}

// lineHandler formats each record with a handler writing into a buffer, then hands the line,
// with its level, to emit: for outputs where the level travels beside the text.
type lineHandler struct {
	h    slog.Handler // writes into *buf
	mu   *sync.Mutex  // guards buf, shared by the derived handlers
	buf  *bytes.Buffer
	emit func(slog.Level, []byte) error
}

func newLineHandler(newHandler func(io.Writer, bool) slog.Handler, emit func(slog.Level, []byte) error) *lineHandler {
	buf := new(bytes.Buffer)
	return &lineHandler{h: newHandler(buf, true), mu: new(sync.Mutex), buf: buf, emit: emit}
}

func (l *lineHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *lineHandler) Handle(ctx context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
	if err := l.h.Handle(ctx, r); err != nil {
		return err
	}
	return l.emit(r.Level, l.buf.Bytes())
}

func (l *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &lineHandler{h: l.h.WithAttrs(attrs), mu: l.mu, buf: l.buf, emit: l.emit}
}

func (l *lineHandler) WithGroup(name string) slog.Handler {
	return &lineHandler{h: l.h.WithGroup(name), mu: l.mu, buf: l.buf, emit: l.emit}
}

// reopenFile is a log file opened for appending that can be reopened.
type reopenFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openReopenFile(path string) (*reopenFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("logsink: log file: %w", err)
	}
	return &reopenFile{path: path, f: f}, nil
}

func (r *reopenFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Write(p)
}

func (r *reopenFile) reopen() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("logsink: log file: %w", err)
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	return old.Close()
}

// fd returns the descriptor of the file now open.
func (r *reopenFile) fd() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.f.Fd())
}

func (r *reopenFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
