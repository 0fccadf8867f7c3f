package systemlogin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// shadowFile is the shadow password file, whose aging fields decide whether an account may log
// in (shadow(5)).
const shadowFile = "/etc/shadow"

// ErrAccount is the error of CheckAccount for an account that may not log in now.
var ErrAccount = errors.New("systemlogin: account refused")

// CheckAccount reports whether the account of the user called name may log in at now, as
// pam_unix's account stack (pam_acct_mgmt) decides from the shadow file for a login that
// authenticated otherwise (a key): an error wrapping ErrAccount, saying why, if the account
// has expired, or its password has expired or must be changed first (login(1) would ask for a
// new one, which a login without a terminal cannot give). A user the shadow file does not list
// (another NSS source) is not refused. It is for what does not run login(1) or PAM, such as a
// resume of a session; it needs root, to read the shadow file.
func CheckAccount(name string, now time.Time) error { return checkAccount(shadowFile, name, now) }

// checkAccount is CheckAccount with the shadow file at path.
func checkAccount(path, name string, now time.Time) error {
	e, err := lookupShadow(path, name)
	if err != nil || e == nil {
		return err
	}
	if why := e.refusal(now.Unix() / (24 * 60 * 60)); why != "" {
		return fmt.Errorf("%w: %s", ErrAccount, why)
	}
	return nil
}

// A shadowEntry is the aging fields of a shadow file's line, in days since 1970-01-01; -1 for
// an empty field, as getspnam(3) has it.
type shadowEntry struct {
	lastChange, max, inactive, expire int64
}

// refusal is why e's account may not log in on day today, as pam_unix's check_shadow_expiry
// says it (in the same order), or "".
func (e *shadowEntry) refusal(today int64) string {
	switch {
	case e.expire != -1 && today >= e.expire:
		return "the account has expired"
	case e.lastChange == 0:
		return "the password must be changed (administrator enforced)"
	case today < e.lastChange:
		return "" // changed in the future: pam_unix lets it pass
	case e.max != -1 && e.inactive != -1 && today-e.lastChange > e.max+e.inactive:
		return "the password has expired and the account is inactive"
	case e.max != -1 && today-e.lastChange > e.max:
		return "the password has expired and must be changed"
	}
	return ""
}

// lookupShadow reads the entry of name in the shadow file at path: nil if it has none.
func lookupShadow(path, name string) (*shadowEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no shadow passwords on this system: nothing ages
	}
	if err != nil {
		return nil, fmt.Errorf("systemlogin: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 8 || fields[0] != name {
			continue
		}
		e := &shadowEntry{}
		for _, f := range []struct {
			i   int
			dst *int64
		}{{2, &e.lastChange}, {4, &e.max}, {6, &e.inactive}, {7, &e.expire}} {
			if *f.dst, err = shadowDays(fields[f.i]); err != nil {
				return nil, fmt.Errorf("systemlogin: %s: the entry of %s: %w", path, name, err)
			}
		}
		return e, nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("systemlogin: %s: %w", path, err)
	}
	return nil, nil
}

// shadowDays is a shadow file's field of days: -1 if empty.
func shadowDays(field string) (int64, error) {
	if field == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(field, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad field %q", field)
	}
	return n, nil
}
