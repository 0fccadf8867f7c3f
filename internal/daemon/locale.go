package daemon

import (
	"github.com/rlogin-go/rlogin/session"
)

// localeEnv is the daemon's policy for the requested environment: the shell gets only locale
// variables, those session.LocaleEnv keeps (the protocol's rule: LANG and LC_* with printable
// ASCII values, each name once, at most session.MaxLocaleVars). It returns the kept "NAME=value"
// entries and the entries it dropped.
func localeEnv(req []string) (kept, dropped []string) {
	kept = session.LocaleEnv(req)
	// kept is a subsequence of req, and an entry it skipped is never equal to a later kept one
	// (same bytes, same verdict), so matching in order finds the dropped ones.
	j := 0
	for _, kv := range req {
		if j < len(kept) && kv == kept[j] {
			j++
			continue
		}
		dropped = append(dropped, kv)
	}
	return kept, dropped
}
