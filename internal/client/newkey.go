package client

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"

	"github.com/rlogin-go/rlogin/keys"
)

// newKey is --new-key: it makes a key at -i's file, else ~/.rlogin/id_ed25519, asking twice on the
// terminal for its passphrase (empty: none), and never replaces a file. It returns the status.
func (r *runner) newKey() int {
	dir, err := r.rloginDir()
	if err != nil {
		return r.fail(err)
	}
	path, shown := dir.path("id_ed25519"), dir.shown("id_ed25519")
	if r.opts.IdentityFile != "" {
		path, shown = r.opts.IdentityFile, r.opts.IdentityFile
	}
	p := r.cfg.Passphrase
	if p == nil {
		p = TTYPassphrase{}
	}
	pass, err := p.Prompt(fmt.Sprintf("Enter passphrase for %s (empty for no passphrase): ", shown))
	if err == nil {
		var again string
		again, err = p.Prompt("Enter the same passphrase again: ")
		if err == nil && again != pass {
			return r.fail(errors.New("the passphrases do not match; no key made"))
		}
	}
	if errors.Is(err, ErrNoTerminal) {
		return r.fail(&connectError{msg: "cannot ask for a passphrase: no terminal; no key made", err: err})
	}
	if err != nil {
		return r.fail(err)
	}
	key, err := keys.Create(path, []byte(pass))
	if errors.Is(err, fs.ErrExist) {
		return r.fail(&connectError{msg: fmt.Sprintf("%s exists; rlogin never replaces a key (remove it first)", shown), err: err})
	}
	if err != nil {
		return r.fail(&connectError{msg: fmt.Sprintf("cannot make the key %s: %s", shown, plainText(err)), err: err})
	}
	protected := "with a passphrase"
	if pass == "" {
		protected = "without a passphrase"
	}
	fmt.Fprintf(r.stderr, "rlogin: created your key %s %s (%s); its public half is %s.pub, "+
		"for the servers' authorized_keys\n", shown, protected, keys.Fingerprint(key.Public().(ed25519.PublicKey)), shown)
	return 0
}
