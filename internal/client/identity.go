package client

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// Which key rlogin offers. The secure protocol presents one key per connection, in the TLS
// handshake, and the server says whether it takes it only after the login request. So rlogin
// offers the first key that exists of, in order:
//
//  1. the first ed25519 key in ssh-agent (SSH_AUTH_SOCK), the first ED25519 line of ssh-add -l;
//  2. ~/.ssh/id_ed25519;
//  3. ~/.rlogin/id_ed25519, created (unencrypted, as before) only when none of the others exists;
//
// and when the server refuses it with "permission denied (publickey)", the next one, on a new
// connection. Each such try costs a new TCP connection and TLS handshake (about 3 ms on loopback,
// see docs/rlogin.1) and counts as a failed login in the server's per-source penalties (rlogind's
// default: refused after four in a row); at most three keys are ever offered, so one run alone
// never locks its user out. With -i or IdentityFile only that key is offered. A key file is read
// (and its passphrase asked for) only when its turn comes, and a key the agent holds is not
// offered twice.
//
// The first key offered is loaded while the TLS handshake's round trip (round trip 2 in
// docs/protocol.md section 3) is under way, when loading it asks nothing (a key of the
// agent's, or a key file that is not encrypted): the handshake's first message needs no key,
// and the server asks for it only in its answer (transport.SecureConfig.GetKey). Loading a key costs about 0.7 ms in a new process (the
// first ed25519 operation builds its tables), which so leaves the path to the shell. A key
// whose passphrase must be asked for is loaded before the connection is made, as before: the
// question must not keep a connection waiting, nor a wrong answer cost a failed login.

// identity is a key rlogin can offer, where it comes from, and the user certificate presented
// with it (cert.go): CertificateFile's when it certifies the key, else the one beside the key
// file (id_ed25519-cert.pub), else the one the agent holds for the key.
type identity struct {
	signer crypto.Signer // an ed25519.PrivateKey, or a *keys.AgentKey
	from   string        // for messages: "~/.ssh/id_ed25519", "ssh-agent key alice@laptop"
	cert   *ssh.Certificate

	// lazy, when not nil, loads the three fields above when they are first needed (ensure).
	lazy *lazyIdentity
}

// A lazyIdentity is the loading of an identity that next handed out before loading it.
type lazyIdentity struct {
	once sync.Once
	load func() (*identity, error)
	err  error
}

// ensure loads the identity if it is not loaded yet (at most once, whoever asks first) and
// returns the error of loading it.
func (id *identity) ensure() error {
	l := id.lazy
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		loaded, err := l.load()
		switch {
		case err != nil:
			l.err = err
		case loaded == nil: // not reached: the first key offered is never one offered already
			l.err = &connectError{msg: "no key to offer", err: errors.New("client: no key left to offer")}
		default:
			id.signer, id.from, id.cert = loaded.signer, loaded.from, loaded.cert
		}
	})
	return l.err
}

// key returns the identity's key and certificate, loading it if need be
// (transport.SecureConfig.GetKey).
func (id *identity) key() (crypto.Signer, *ssh.Certificate, error) {
	if err := id.ensure(); err != nil {
		return nil, nil, err
	}
	return id.signer, id.cert, nil
}

// public is the identity's public key.
func (id *identity) public() ed25519.PublicKey { return id.signer.Public().(ed25519.PublicKey) }

// String is how messages name the identity: where it comes from and its fingerprint.
func (id *identity) String() string {
	if err := id.ensure(); err != nil {
		return "a key that did not load"
	}
	return fmt.Sprintf("%s (%s)", id.from, keys.Fingerprint(id.public()))
}

// identities hands out the keys to offer, one at a time, loading each only when its turn comes.
type identities struct {
	r       *runner
	agent   *keys.Agent // nil when there is none; closed by close
	pending []pendingKey
	offered []*identity

	handedOut bool // next was called
}

// A pendingKey is a key that may be offered, not loaded yet.
type pendingKey struct {
	load func() (*identity, error)
	// quiet, if not nil, finds out whether loading the key asks nothing and is expected to
	// succeed, and if so returns how to load it then: with what quiet read, not again.
	quiet func() (load func() (*identity, error))
}

// keyFile is the pendingKey of the key file at path (shown as shown in messages).
func (ids *identities) keyFile(path, shown string) pendingKey {
	return pendingKey{
		load: func() (*identity, error) { return ids.fromFile(path, shown, nil) },
		quiet: func() func() (*identity, error) {
			key := quietKey(path)
			if key == nil {
				return nil
			}
			return func() (*identity, error) { return ids.fromFile(path, shown, key) }
		},
	}
}

// newIdentities finds the keys rlogin may offer (see above). The caller closes the result.
func (r *runner) newIdentities(ctx context.Context, dir rloginDir) (*identities, error) {
	ids := &identities{r: r}
	if sock := r.getenv("SSH_AUTH_SOCK"); sock != "" {
		a, err := keys.DialAgent(ctx, sock)
		if err != nil {
			r.debugf("not using ssh-agent: %v", err)
		} else {
			ids.agent = a
		}
	}
	if r.opts.IdentityFile != "" {
		path := r.opts.IdentityFile
		ids.pending = append(ids.pending, ids.keyFile(path, path))
		return ids, nil
	}
	if ids.agent != nil {
		ks, err := ids.agent.Keys()
		switch {
		case err != nil:
			r.debugf("not using ssh-agent: %v", err)
		case len(ks) == 0:
			r.debugf("ssh-agent holds no ed25519 key")
		default:
			first := ks[0]
			load := func() (*identity, error) {
				return &identity{signer: first, from: "ssh-agent key " + first.Comment, cert: ids.certificate(first, "", "")}, nil
			}
			ids.pending = append(ids.pending, pendingKey{load: load, quiet: func() func() (*identity, error) { return load }})
		}
	}
	sshKey := filepath.Join(dir.home, ".ssh", "id_ed25519")
	ownKey := dir.path("id_ed25519")
	for _, f := range []struct{ path, shown string }{
		{sshKey, shownUnder(dir, sshKey)},
		{ownKey, dir.shown("id_ed25519")},
	} {
		if _, err := os.Lstat(f.path); err == nil {
			ids.pending = append(ids.pending, ids.keyFile(f.path, f.shown))
		}
	}
	if len(ids.pending) == 0 {
		ids.pending = append(ids.pending, pendingKey{load: func() (*identity, error) { return r.createKey(dir) }}) // says so
	}
	return ids, nil
}

// shownUnder is path as messages show it, under the home directory as dir shows it.
func shownUnder(dir rloginDir, path string) string {
	if rel, err := filepath.Rel(dir.home, path); err == nil && !strings.HasPrefix(rel, "..") {
		return dir.shownHome + "/" + rel
	}
	return path
}

// createKey makes ~/.rlogin/id_ed25519 when the user has no key at all, as rlogin always did.
func (r *runner) createKey(dir rloginDir) (*identity, error) {
	// (A certificate beside a key made just now is one the user put there first: it is presented
	// as beside any other key file.)
	key, created, err := keys.LoadOrCreate(dir.path("id_ed25519"))
	if err != nil {
		return nil, &connectError{msg: fmt.Sprintf("cannot load your key %s: %s", dir.shown("id_ed25519"), plainText(err)), err: err}
	}
	id := &identity{signer: key, from: dir.shown("id_ed25519"), cert: r.certificateBeside(dir.path("id_ed25519"), dir.shown("id_ed25519"), key.Public().(ed25519.PublicKey))}
	if created {
		fmt.Fprintf(r.stderr, "rlogin: created your key %s (%s)\n", id.from, keys.Fingerprint(id.public()))
	}
	return id, nil
}

// next returns the next key to offer, or nil when there is none left. A key file that is
// passphrase-protected when there is no terminal to ask on is passed over, saying so, when
// another key may follow. The first key, when it loads quietly, is returned before it is
// loaded: the handshake loads it (identity.key) while its round trip is under way. With
// -d every key is loaded at once, so that the messages come in their order.
func (ids *identities) next() (*identity, error) {
	first := !ids.handedOut
	ids.handedOut = true
	if first && len(ids.pending) > 0 && ids.pending[0].quiet != nil && !ids.r.opts.Debug {
		if load := ids.pending[0].quiet(); load != nil {
			ids.pending[0].load = load
			return &identity{lazy: &lazyIdentity{load: ids.load}}, nil
		}
	}
	return ids.load()
}

// load loads the next key to offer (see next).
func (ids *identities) load() (*identity, error) {
	for len(ids.pending) > 0 {
		load := ids.pending[0].load
		ids.pending = ids.pending[1:]
		id, err := load()
		if errors.Is(err, ErrNoTerminal) && len(ids.pending) > 0 {
			fmt.Fprintf(ids.r.stderr, "rlogin: %s\n", userMessage(err))
			continue
		}
		if err != nil {
			return nil, err
		}
		if id == nil || ids.seen(id.public()) {
			continue
		}
		ids.offered = append(ids.offered, id)
		return id, nil
	}
	return nil, nil
}

// more reports whether another key may follow.
func (ids *identities) more() bool { return len(ids.pending) > 0 }

// seen reports whether pub was offered already.
func (ids *identities) seen(pub ed25519.PublicKey) bool {
	for _, o := range ids.offered {
		if o.public().Equal(pub) {
			return true
		}
	}
	return false
}

// close ends the connection to the agent.
func (ids *identities) close() {
	if ids.agent != nil {
		_ = ids.agent.Close() // best effort: nothing more is signed
	}
}

// fromFile loads the key file at path (shown as shown in messages). When the agent holds the
// same key (path+".pub" names it), the agent signs and nothing is asked; when an offered key is
// the same, the file is passed over (nil, nil); else the key is read, the one quietKey read if
// not nil, or the file, asking for its passphrase once when it is encrypted.
func (ids *identities) fromFile(path, shown string, read ed25519.PrivateKey) (*identity, error) {
	pub, pubErr := keys.LoadPublic(path + ".pub")
	if pubErr == nil {
		if ids.seen(pub) {
			return nil, nil
		}
		if k := ids.agentKey(pub); k != nil {
			return &identity{signer: k, from: shown + " (in ssh-agent)", cert: ids.certificate(k, path, shown)}, nil
		}
	}
	key, err := read, error(nil)
	if key != nil {
		err = keys.CheckKey(path, key) // what Load checks last: see quietKey
	} else {
		ask := func() ([]byte, error) { return ids.r.askPassphrase(shown) }
		key, err = keys.LoadWithPassphrase(path, ask)
	}
	switch {
	case err == nil:
		return &identity{signer: key, from: shown, cert: ids.certificate(key, path, shown)}, nil
	case errors.Is(err, ErrNoTerminal):
		return nil, &connectError{msg: fmt.Sprintf("cannot ask for the passphrase of %s: no terminal "+
			"(add the key to ssh-agent with ssh-add, or run rlogin from a terminal)", shown), err: err}
	case errors.Is(err, keys.ErrWrongPassphrase):
		return nil, &connectError{msg: fmt.Sprintf("wrong passphrase for %s", shown), err: err}
	case errors.Is(err, fs.ErrNotExist):
		return nil, &connectError{msg: fmt.Sprintf("no key %s", shown), err: err}
	}
	return nil, &connectError{msg: fmt.Sprintf("cannot load your key %s: %s", shown, plainText(err)), err: err}
}

// certificate is the user certificate to present with key, whose file is path (shown as shown;
// "" for a key only in the agent): see identity.
func (ids *identities) certificate(key crypto.Signer, path, shown string) *ssh.Certificate {
	r := ids.r
	pub := key.Public().(ed25519.PublicKey)
	if r.certificateFile != "" {
		if cert := r.certificateAt(r.certificateFile, r.certificateFile, pub); cert != nil {
			return cert
		}
	}
	if path != "" {
		if cert := r.certificateBeside(path, shown, pub); cert != nil {
			return cert
		}
	}
	if k, ok := key.(*keys.AgentKey); ok && k.Certificate != nil {
		r.debugf("presenting the certificate ssh-agent holds for the key (key ID %q, serial %d)", k.Certificate.KeyId, k.Certificate.Serial)
		return k.Certificate
	}
	return nil
}

// agentKey is the agent's key pub, or nil.
func (ids *identities) agentKey(pub ed25519.PublicKey) *keys.AgentKey {
	if ids.agent == nil {
		return nil
	}
	ks, err := ids.agent.Keys()
	if err != nil {
		ids.r.debugf("ssh-agent: %v", err)
		return nil
	}
	for _, k := range ks {
		if k.Public().(ed25519.PublicKey).Equal(pub) {
			return k
		}
	}
	return nil
}

// quietKey reads the key file at path, and returns its key if it loads without a question: a
// regular file that only its owner may read, holding an ed25519 key that is not encrypted; else
// nil. The key is loaded from what it read (fromFile), during the handshake's round trip:
// whether its halves match, which costs a new process the ed25519 tables (see above), is
// checked then (keys.CheckKey), in keys.Load's words, as for any key file.
func quietKey(path string) ed25519.PrivateKey {
	key, err := keys.LoadUnchecked(path)
	if err != nil {
		return nil
	}
	return key
}

// askPassphrase asks for the passphrase of the key file shown as shown, on Config.Passphrase.
func (r *runner) askPassphrase(shown string) ([]byte, error) {
	p := r.cfg.Passphrase
	if p == nil {
		p = TTYPassphrase{}
	}
	answer, err := p.Prompt(fmt.Sprintf("Enter passphrase for key '%s': ", shown))
	if err != nil {
		return nil, err
	}
	return []byte(answer), nil
}

// keyRefused reports whether err is the server's refusal of the key offered (rlogind's words for
// it, as sshd's): then another key may be let in.
func keyRefused(err error) bool {
	var refused *session.RefusedError
	return errors.As(err, &refused) && refused.Reason == "permission denied (publickey)"
}

// refusedAll is the failure after the server refused every key offered, the last with err.
func (ids *identities) refusedAll(err error) error {
	names := make([]string, len(ids.offered))
	for i, id := range ids.offered {
		names[i] = id.String()
	}
	return &connectError{msg: fmt.Sprintf("%s; rlogin offered %s (choose another key with -i)",
		userMessage(err), strings.Join(names, ", ")), err: err}
}
