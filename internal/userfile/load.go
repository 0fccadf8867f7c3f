package userfile

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// DefaultMaxPerUser is the MaxPerUser of a Reader that sets none: enough for the few files of
// one login at a time, each with a retry, and a bound on what a user whose file system hangs
// ties up.
const DefaultMaxPerUser = 4

// ErrBusy is the error of Load for a user who already has MaxPerUser loads outstanding.
var ErrBusy = errors.New("userfile: too many reads of the user's files still outstanding")

// A Reader runs Loads and counts, per user, the ones whose function has not returned yet, even
// after Load itself has returned at its deadline. Its zero value is ready to use; it must not be
// copied after first use. Its methods may be called from several goroutines at once.
type Reader struct {
	// MaxPerUser bounds the Loads of one user whose function has not returned. 0 means
	// DefaultMaxPerUser.
	MaxPerUser int

	mu   sync.Mutex
	busy map[int]int // uid -> functions not returned
}

// Load runs load with the file-system credentials of the user uid (see the package doc) and
// returns its result, or an error once ctx is done, whichever comes first. Only when the calling
// process is root and uid is not 0 are the credentials switched: a daemon that runs as the user
// reads as itself. load must do its work on the calling goroutine (it runs locked to one OS
// thread whose credentials are the user's). A load still running when ctx ends keeps running
// until it returns, counted against uid in r; Load returns an error wrapping ErrBusy at once when
// uid has r's MaxPerUser of them. It returns an error wrapping ctx's cause if ctx ends first.
func Load[T any](ctx context.Context, r *Reader, uid int, load func() (T, error)) (T, error) {
	var zero T
	if err := context.Cause(ctx); err != nil {
		return zero, fmt.Errorf("userfile: %w", err)
	}
	if err := r.acquire(uid); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: the goroutine never waits for a Load that has gone
	go func() {                  // owned by r: counted until load returns, however long that takes
		defer r.release(uid)
		var res result
		res.err = asUser(uid, func() error {
			res.v, res.err = load()
			return res.err
		})
		done <- res
	}()
	select {
	case res := <-done:
		return res.v, res.err
	case <-ctx.Done():
		return zero, fmt.Errorf("userfile: the files of uid %d were not read in time: %w", uid, context.Cause(ctx))
	}
}

// Outstanding reports how many of uid's loads have not returned.
func (r *Reader) Outstanding(uid int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.busy[uid]
}

func (r *Reader) acquire(uid int) error {
	max := r.MaxPerUser
	if max <= 0 {
		max = DefaultMaxPerUser
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[uid] >= max {
		return fmt.Errorf("%w (uid %d has %d)", ErrBusy, uid, r.busy[uid])
	}
	if r.busy == nil {
		r.busy = make(map[int]int)
	}
	r.busy[uid]++
	return nil
}

func (r *Reader) release(uid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[uid]--; r.busy[uid] == 0 {
		delete(r.busy, uid) // the map holds only users with loads outstanding
	}
}
