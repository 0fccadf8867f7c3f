//go:build pam && cgo && linux

package pamlogin

/*
#cgo LDFLAGS: -lpam
#include <security/pam_appl.h>

// The failure delay PAM asked for on this thread (PAM_FAIL_DELAY's function is called on the
// thread running pam_authenticate, and failDelay reads it there right after).
static __thread unsigned int pamlogin_delay_usec;

static void pamlogin_fail_delay(int status, unsigned int usec, void *appdata) {
	(void)status;
	(void)appdata;
	pamlogin_delay_usec = usec;
}

static int pamlogin_set_fail_delay(pam_handle_t *pamh) {
	void (*fn)(int, unsigned int, void *) = pamlogin_fail_delay;
	return pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)fn);
}

static unsigned int pamlogin_take_fail_delay(void) {
	unsigned int usec = pamlogin_delay_usec;
	pamlogin_delay_usec = 0;
	return usec;
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/msteinert/pam/v2"
	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/usershell"
)

// Why github.com/msteinert/pam/v2 and a few lines of cgo of our own: the binding is small, kept
// up to date and widely used (it handles the conversation's memory, pam_end and the
// environment list), but it has no way to set PAM_FAIL_DELAY, an item holding a function. With
// the delay left to PAM, a failed pam_authenticate sleeps in C (login's stack: 3 s), where no
// context reaches it; with our function, PAM reports the delay and Authenticate serves it in Go,
// cut short when the context ends, after the transaction has ended.

// Supported is true: this build has PAM.
const Supported = true

// noTTY is PAM_TTY for a program without a terminal, as sshd sets "ssh": modules that look at
// the terminal (pam_lastlog, pam_systemd) see that it is a remote login without one.
const noTTY = "rlogin"

// noHomeMessage is what login(1) tells a user whose home directory is missing.
const noHomeMessage = "No directory, logging in with HOME=/"

// Login is an authenticated user's PAM transaction: made by Authenticate or Account, it starts
// the user's program once (Start), waits for it and closes the PAM session (Wait). Close must
// be called in every case: it ends a program still running and the transaction. A Login's
// methods must not be called concurrently; Process may be, from any goroutine, once Start has
// returned (to signal the program while Wait waits).
type Login struct {
	cfg  Config
	conv *conversation
	tx   *pam.Transaction // nil once ended
	user string           // PAM_USER after the account stack: the user the session runs as

	cmd         *exec.Cmd // the program, once started
	starter     Starter   // Program.Starter: starts and reaps cmd; nil: this package does
	line        string    // its terminal's name without "/dev/" ("pts/3"), or ""
	sessionOpen bool      // pam_open_session succeeded and pam_close_session has not run
	waited      bool
	status      int
	waitErr     error
}

// Authenticate runs PAM's authentication stack for cfg.User, then its account stack (as
// Account), relaying the stack's prompts and messages through conv; an expired password is
// changed through conv too (pam_chauthtok), or the login is refused. Authentication fails for a
// user without a password (PAM_DISALLOW_NULL_AUTHTOK, as sshd's PermitEmptyPasswords no).
//
// A refusal matches ErrRefused and ends with PAM's reason, the same for a user that does not
// exist as for a wrong password; it is returned after the delay the stack asks for, or when ctx
// ends if that comes first. When ctx ends during the conversation, the error matches ctx's. In
// every failure the PAM transaction has ended before Authenticate returns.
func Authenticate(ctx context.Context, cfg Config, conv Conversation) (*Login, error) {
	return start(ctx, cfg, conv, true)
}

// Account is Authenticate without the authentication stack, for a user that authenticated
// otherwise (a key): only the account stack runs (pam_acct_mgmt: expired or locked accounts,
// pam_nologin where the stack has it, access rules), as sshd does for a key login. A password
// that must be changed is changed through conv, or the login is refused.
func Account(ctx context.Context, cfg Config, conv Conversation) (*Login, error) {
	return start(ctx, cfg, conv, false)
}

// start is Authenticate (password true) and Account.
func start(ctx context.Context, cfg Config, conv Conversation, password bool) (*Login, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pamlogin: %w", err)
	}
	if cfg.User == "" {
		// PAM would ask for one ("login: "): the client names its user before anything else.
		return nil, errors.New("pamlogin: no user name")
	}
	if cfg.Service == "" {
		cfg.Service = DefaultService
	}
	l := &Login{cfg: cfg, conv: &conversation{conv: conv}}
	var delay time.Duration
	var err error
	onLoginThread(func() { delay, err = l.check(ctx, password) })
	if err == nil {
		return l, nil
	}
	// The delay counts from the user's last answer, not from PAM's return: pam_unix checks a
	// known user's password (a hash, 36-100 ms here) and not an unknown user's (3-9 ms), and
	// PAM adds its delay after that work, which would tell the two apart on average.
	if !l.conv.answered.IsZero() {
		delay -= time.Since(l.conv.answered)
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return nil, err
}

// check runs the stacks of a login on the calling thread; on failure it ends the transaction
// and returns the delay PAM asked for.
func (l *Login) check(ctx context.Context, password bool) (time.Duration, error) {
	l.conv.ctx = ctx
	tx, err := pam.Start(l.cfg.Service, l.cfg.User, l.conv)
	if err != nil {
		return 0, fmt.Errorf("pamlogin: starting PAM service %s: %w", l.cfg.Service, err)
	}
	l.tx = tx
	fail := func(err error) (time.Duration, error) {
		delay := time.Duration(C.pamlogin_take_fail_delay()) * time.Microsecond
		_ = l.end() // the refusal is what matters; pam_end's status adds nothing
		return delay, err
	}
	h, err := handleOf(tx)
	if err != nil {
		return fail(err)
	}
	if rc := C.pamlogin_set_fail_delay(h); rc != C.PAM_SUCCESS {
		return fail(fmt.Errorf("pamlogin: setting the failure delay: %w", pam.Error(rc)))
	}
	if l.cfg.RemoteHost != "" {
		if err := tx.SetItem(pam.Rhost, l.cfg.RemoteHost); err != nil {
			return fail(fmt.Errorf("pamlogin: setting PAM_RHOST: %w", err))
		}
	}
	if password {
		if err := tx.Authenticate(pam.DisallowNullAuthtok); err != nil {
			return fail(l.refusal(ctx, err))
		}
	}
	err = tx.AcctMgmt(pam.DisallowNullAuthtok)
	if errors.Is(err, pam.ErrNewAuthtokReqd) {
		// An expired password (pam_unix has told the user so): changed now, through the same
		// conversation, as login(1) and sshd do; a client that cannot answer is refused.
		err = tx.ChangeAuthTok(pam.ChangeExpiredAuthtok)
	}
	if err != nil {
		return fail(l.refusal(ctx, err))
	}
	name, err := tx.GetItem(pam.User)
	if err != nil || name == "" {
		return fail(fmt.Errorf("pamlogin: PAM has no user after the account stack: %w", err))
	}
	l.user = name
	return 0, nil
}

// refusal is the error of a stack that failed with err: ctx's error if ctx ended, otherwise
// ErrRefused with PAM's reason. An unknown user's reason is the one a wrong password gets
// (PAM_AUTH_ERR's): a stack that says "User not known" would tell a client who exists.
func (l *Login) refusal(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("pamlogin: %w", ctxErr)
	}
	if errors.Is(err, pam.ErrUserUnknown) {
		err = pam.ErrAuth
	}
	if l.conv.err != nil {
		return fmt.Errorf("pamlogin: %w: %w (%w)", ErrRefused, err, l.conv.err)
	}
	return fmt.Errorf("pamlogin: %w: %w", ErrRefused, err)
}

// User returns the name of the user the session runs as: the one PAM authenticated, which a
// module may have mapped from the name the client gave.
func (l *Login) User() string { return l.user }

// Start establishes the user's credentials (pam_setcred), opens the PAM session (the session
// stack: loginuid, limits, the environment, motd through the conversation's Info) and starts p
// as the user: the passwd database's uid, gid and login shell, the supplementary groups of the
// group database (and any a module such as pam_group added), a session of its own, with p.TTY
// as its controlling terminal when it has one; in the home directory, or in / with login(1)'s
// message if that is missing; with the environment described below. For a program on a
// terminal, cfg.Records writes its login record. Start may be called once; on failure the
// session and credentials are undone (Close still ends the transaction).
//
// The environment: what the PAM stack set (pam_env, pam_mail, ...), PATH (login.defs'
// ENV_PATH, or a default) and MAIL (login.defs' MAIL_DIR) where PAM set none, then HOME, SHELL,
// USER and LOGNAME from the passwd database, p.Term as TERM and p.Locale over PAM's. Nothing of
// the caller's own environment.
//
// Call Start on the main thread: from the main goroutine, locked to it by runtime.LockOSThread
// in an init function. The session stack's pam_loginuid sets the login uid of the process, which
// the kernel allows from its main thread only (elsewhere opening the session fails), and the
// program inherits the login uid, keyrings and file system ids of the thread that forks it.
// Called elsewhere, Start runs the session stack and the fork on a thread of its own, which is
// enough for a stack without pam_loginuid.
//
// Every descriptor of the calling process from 3 up is marked close-on-exec first, so that the
// program gets only its standard input, output and error, even of descriptors a PAM module
// opened without the flag.
func (l *Login) Start(ctx context.Context, p Program) error {
	switch {
	case l.tx == nil:
		return errors.New("pamlogin: start: the login has ended")
	case l.cmd != nil:
		return errors.New("pamlogin: start: already started")
	case p.TTY != nil && (p.Stdin != nil || p.Stdout != nil || p.Stderr != nil):
		return errors.New("pamlogin: start: a program on a terminal has no other standard files")
	}
	acct, err := lookupAccount(l.user)
	if err != nil {
		return err
	}
	ttyItem := noTTY
	if p.TTY != nil {
		name, err := ttyName(p.TTY)
		if err != nil {
			return err
		}
		ttyItem, l.line = name, strings.TrimPrefix(name, "/dev/")
	}
	// pam_loginuid writes /proc/self/loginuid, which the kernel lets only the main thread
	// write; and the program inherits the login uid of the thread that forks it.
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		err = l.open(ctx, p, acct, ttyItem)
		runtime.UnlockOSThread()
	} else {
		runtime.UnlockOSThread()
		onThread(func() { err = l.open(ctx, p, acct, ttyItem) })
		if err != nil && l.cmd == nil {
			err = fmt.Errorf("%w (not on the main thread: see Start)", err)
		}
	}
	if err != nil {
		return err
	}
	if l.line != "" && l.cfg.Records != nil {
		if err := l.cfg.Records.Login(l.line, l.user, l.cfg.RemoteHost, l.cmd.Process.Pid); err != nil {
			l.waitErr = fmt.Errorf("pamlogin: login record: %w", err)
		}
	}
	return nil
}

// ttyName returns the path of the terminal f ("/dev/pts/3"), from /proc (without f.Fd, which
// would make f blocking for good).
func ttyName(f *os.File) (string, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return "", fmt.Errorf("pamlogin: start: the terminal: %w", err)
	}
	var name string
	var nameErr, ttyErr error
	err = rc.Control(func(fd uintptr) {
		_, ttyErr = unix.IoctlGetTermios(int(fd), unix.TCGETS)
		name, nameErr = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd)))
	})
	if err = errors.Join(err, ttyErr, nameErr); err != nil {
		return "", fmt.Errorf("pamlogin: start: the terminal: %w", err)
	}
	if !strings.HasPrefix(name, "/dev/") {
		return "", fmt.Errorf("pamlogin: start: the terminal %q is not in /dev", name)
	}
	return name, nil
}

// account is what the passwd and group databases say about the user a session runs as.
type account struct {
	uid, gid uint32
	groups   []uint32 // supplementary groups, the primary one included
	home     string
	shell    string
}

// lookupAccount looks name up in the passwd and group databases.
func lookupAccount(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("pamlogin: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pamlogin: user %s: %w", name, err)
	}
	a := &account{uid: uint32(uid), gid: uint32(gid), home: u.HomeDir}
	gids, err := u.GroupIds() // getgrouplist(3), as initgroups(3) does
	if err != nil {
		return nil, fmt.Errorf("pamlogin: user %s: groups: %w", name, err)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.groups = append(a.groups, uint32(n))
		}
	}
	// usershell reads the shell from /etc/passwd (os/user has none), /bin/sh if it names none.
	a.shell, _ = usershell.Lookup(usershell.PasswdPath, int(uid))
	return a, nil
}

// open runs the session's PAM steps and starts the program, all on the calling thread: the
// session stack may leave thread state the program must inherit (pam_keyinit's session
// keyring, pam_loginuid's login uid), and the fork copies the forking thread's.
func (l *Login) open(ctx context.Context, p Program, acct *account, ttyItem string) error {
	l.conv.ctx = ctx
	tx := l.tx
	if err := tx.SetItem(pam.Tty, ttyItem); err != nil {
		return fmt.Errorf("pamlogin: setting PAM_TTY: %w", err)
	}
	before, _ := unix.Getgroups()
	if err := tx.SetCred(pam.EstablishCred); err != nil {
		return fmt.Errorf("pamlogin: establishing credentials: %w", err)
	}
	after, _ := unix.Getgroups()
	if err := tx.OpenSession(0); err != nil {
		_ = tx.SetCred(pam.DeleteCred) // best effort: the session never opened
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return fmt.Errorf("pamlogin: opening the session: %w", err)
	}
	l.sessionOpen = true
	undo := func(err error) error {
		return errors.Join(err, l.closeSession())
	}
	pamEnv, err := tx.GetEnvList()
	if err != nil {
		return undo(fmt.Errorf("pamlogin: the PAM environment: %w", err))
	}
	home := acct.home
	if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
		home = "/"
		if err := l.conv.Info(ctx, noHomeMessage); err != nil {
			return undo(fmt.Errorf("pamlogin: %w", err))
		}
	}
	env := make([]string, 0, len(pamEnv))
	for _, k := range slices.Sorted(maps.Keys(pamEnv)) {
		env = append(env, k+"="+pamEnv[k])
	}
	cmd := &exec.Cmd{
		Path: acct.shell,
		Args: []string{"-" + filepath.Base(acct.shell)}, // a login shell
		Env:  sessionEnv(env, readLoginDefs(loginDefsPath), l.user, home, acct.shell, p.Term, clientVars(p)),
		Dir:  home,
		SysProcAttr: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: acct.uid, Gid: acct.gid, Groups: withAdded(acct.groups, before, after)},
			Setsid:     true,
		},
		Stdin:  p.Stdin,
		Stdout: p.Stdout,
		Stderr: p.Stderr,
	}
	if p.Command != "" {
		cmd.Args = []string{filepath.Base(acct.shell), "-c", p.Command}
	}
	switch {
	case p.Starter != nil:
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil // the Starter's terminal
	case p.TTY != nil:
		cmd.Stdin, cmd.Stdout, cmd.Stderr = p.TTY, p.TTY, p.TTY
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0 // the child's descriptor 0, the terminal
	}
	// Descriptors a PAM module opened without O_CLOEXEC would otherwise reach the user's
	// program (os/exec passes on every descriptor not marked close-on-exec).
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return undo(fmt.Errorf("pamlogin: marking descriptors close-on-exec: %w", err))
	}
	if p.Starter != nil {
		err = p.Starter.Start(cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return undo(fmt.Errorf("pamlogin: starting %s: %w", acct.shell, err))
	}
	l.cmd, l.starter = cmd, p.Starter
	return nil
}

// withAdded returns groups with the groups that after has and before had not: those a module
// added to the calling process's own during pam_setcred (pam_group), which the program must get
// as a child of that process would.
func withAdded(groups []uint32, before, after []int) []uint32 {
	out := slices.Clone(groups)
	for _, g := range after {
		if !slices.Contains(before, g) && !slices.Contains(out, uint32(g)) {
			out = append(out, uint32(g))
		}
	}
	return out
}

// Process returns the running program, for signals; nil before Start.
func (l *Login) Process() *os.Process {
	if l.cmd == nil {
		return nil
	}
	return l.cmd.Process
}

// Wait waits for the program to exit and returns its exit status, 128+n if signal n ended it
// (as a shell reports it); it then writes the logout record, closes the PAM session and
// deletes the credentials, and ends the transaction. Later calls return the same.
func (l *Login) Wait() (int, error) {
	if l.cmd == nil {
		return 0, errors.New("pamlogin: wait: not started")
	}
	if l.waited {
		return l.status, l.waitErr
	}
	l.waited = true
	var state *os.ProcessState
	var err error
	if l.starter != nil {
		state, err = l.starter.Wait()
	} else {
		err = l.cmd.Wait()
		state = l.cmd.ProcessState
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		l.waitErr = errors.Join(l.waitErr, fmt.Errorf("pamlogin: wait: %w", err))
	}
	if state != nil {
		l.status = exitStatus(state)
	}
	if l.line != "" && l.cfg.Records != nil {
		if err := l.cfg.Records.Logout(l.line, l.cmd.Process.Pid); err != nil {
			l.waitErr = errors.Join(l.waitErr, fmt.Errorf("pamlogin: logout record: %w", err))
		}
	}
	l.waitErr = errors.Join(l.waitErr, l.finish())
	return l.status, l.waitErr
}

// exitStatus is the status a shell reports for a program that ended with state.
func exitStatus(state *os.ProcessState) int {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}

// Close ends what the login holds: a program still running is killed (SIGKILL) and waited
// for, the PAM session closed and the transaction ended. It may be called more than once.
func (l *Login) Close() error {
	if l.cmd != nil && !l.waited {
		_ = l.cmd.Process.Kill() // best effort: it may have exited already
		_, err := l.Wait()
		return err
	}
	return l.finish()
}

// finish closes the session and ends the transaction, on a thread of their own, with a
// conversation that no longer reaches the client: a session's end must not wait for it.
func (l *Login) finish() error {
	if l.tx == nil {
		return nil
	}
	var err error
	onLoginThread(func() {
		l.conv.ctx = context.Background()
		l.conv.conv = nil
		err = errors.Join(l.closeSession(), l.end())
	})
	return err
}

// closeSession closes the PAM session and deletes the credentials, once.
func (l *Login) closeSession() error {
	if !l.sessionOpen {
		return nil
	}
	l.sessionOpen = false
	var errs []error
	if err := l.tx.CloseSession(pam.Silent); err != nil {
		errs = append(errs, fmt.Errorf("pamlogin: closing the session: %w", err))
	}
	if err := l.tx.SetCred(pam.DeleteCred | pam.Silent); err != nil {
		errs = append(errs, fmt.Errorf("pamlogin: deleting credentials: %w", err))
	}
	return errors.Join(errs...)
}

// end ends the transaction (pam_end), once.
func (l *Login) end() error {
	if l.tx == nil {
		return nil
	}
	err := l.tx.End()
	l.tx = nil
	if err != nil {
		return fmt.Errorf("pamlogin: ending the transaction: %w", err)
	}
	return nil
}

// handleOf returns tx's pam_handle_t, which the binding keeps unexported, for the one item it
// cannot set (PAM_FAIL_DELAY). The binding's layout is checked, so that a version that moves the
// handle fails here instead of passing PAM a wrong pointer.
func handleOf(tx *pam.Transaction) (*C.pam_handle_t, error) {
	f, ok := reflect.TypeFor[pam.Transaction]().FieldByName("handle")
	if !ok || f.Offset != 0 || f.Type.Kind() != reflect.Pointer {
		return nil, errors.New("pamlogin: the PAM binding keeps its handle where this package does not know")
	}
	return *(**C.pam_handle_t)(unsafe.Pointer(tx)), nil
}

// onLoginThread runs f on the main thread if the caller runs there (a process that locked its
// main goroutine to the main thread, as Start asks), so that a login's every PAM call runs on
// the thread that opens its session, as in login(1) and sshd: modules may keep per-thread state
// from one call to the next. Elsewhere it runs f with onThread.
func onLoginThread(f func()) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		f()
		runtime.UnlockOSThread() // the caller's own lock, if any, stays
		return
	}
	runtime.UnlockOSThread()
	onThread(f)
}

// onThread runs f on an OS thread of its own and waits for it. The thread ends with f, never to
// run other goroutines: PAM modules change thread state (file system ids, keyrings, the login
// uid) that must not leak into the rest of the program.
func onThread(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the runtime ends the thread with the goroutine
		f()
	}()
	<-done
}

// conversation is the binding's conversation handler: it relays PAM's messages to the caller's
// Conversation with the context of the call in progress. It is used on that call's thread only.
type conversation struct {
	conv Conversation    // nil once the session has ended: messages are dropped, prompts fail
	ctx  context.Context // the context of the call in progress
	err  error           // the first error of the caller's Conversation, or of a bad answer

	answered time.Time // when the caller's Conversation last answered a prompt; zero before
}

// errBadAnswer is the conversation's error for an answer PAM must not get.
var errBadAnswer = fmt.Errorf("an answer longer than %d bytes or holding a NUL byte", MaxResponse)

// RespondPAM implements pam.ConversationHandler.
func (c *conversation) RespondPAM(style pam.Style, msg string) (string, error) {
	if err := c.ctx.Err(); err != nil {
		return "", c.fail(err)
	}
	if c.conv == nil {
		if style == pam.PromptEchoOff || style == pam.PromptEchoOn {
			return "", errors.New("no one to answer")
		}
		return "", nil
	}
	switch style {
	case pam.PromptEchoOff, pam.PromptEchoOn:
		answer, err := c.conv.Prompt(c.ctx, msg, style == pam.PromptEchoOn)
		c.answered = time.Now()
		if err != nil {
			return "", c.fail(err)
		}
		// A NUL would cut the answer short in C: "right\x00junk" must not be "right".
		if len(answer) > MaxResponse || strings.IndexByte(answer, 0) >= 0 {
			return "", c.fail(errBadAnswer)
		}
		return answer, nil
	case pam.TextInfo:
		return "", c.fail(c.conv.Info(c.ctx, msg))
	case pam.ErrorMsg:
		return "", c.fail(c.conv.Error(c.ctx, msg))
	}
	return "", c.fail(fmt.Errorf("a message of unknown style %d", style))
}

// Info shows text through the caller's Conversation, if there is one.
func (c *conversation) Info(ctx context.Context, text string) error {
	if c.conv == nil {
		return nil
	}
	return c.fail(c.conv.Info(ctx, text))
}

// fail notes err as the conversation's first error and returns it.
func (c *conversation) fail(err error) error {
	if err != nil && c.err == nil {
		c.err = err
	}
	return err
}

// clientVars are the variables of p that the client's request sets over PAM's: the locale, and
// SSH_ORIGINAL_COMMAND for a forced command.
func clientVars(p Program) []string {
	if p.OriginalCommand == "" {
		return p.Locale
	}
	return append(slices.Clip(p.Locale), "SSH_ORIGINAL_COMMAND="+p.OriginalCommand)
}
