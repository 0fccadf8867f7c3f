package rlogind

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The configuration file has sshd_config's format, with rlogind's flag names as keywords.

// maxConfigSize bounds the configuration file.
const maxConfigSize = 64 << 10

// readConfigFile reads the configuration file at path. The file must be a regular file owned
// by root or by the user running rlogind and not writable by group or others: it says which
// keys let whom in.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("configuration file %s is not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("configuration file %s: owned by uid %d, want root or %d", path, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("configuration file %s: mode %04o is writable by group or others", path, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("configuration file %s is larger than %d bytes", path, maxConfigSize)
	}
	return data, nil
}

// configLine is one setting of a configuration file.
type configLine struct {
	num            int // 1-based
	keyword, value string
}

// parseConfig splits a configuration file into its settings. Its format is sshd_config's: one
// "keyword value" per line (keyword and value separated by spaces, tabs or one '='), blank
// lines and lines starting with '#' ignored, a value optionally in double quotes.
func parseConfig(data []byte) ([]configLine, error) {
	var lines []configLine
	for num := 1; len(data) > 0; num++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		i := strings.IndexAny(s, " \t=")
		if i == 0 {
			return nil, fmt.Errorf("line %d: a value without a keyword", num)
		}
		if i < 0 {
			return nil, fmt.Errorf("line %d: keyword %s without a value", num, quoteKeyword(s))
		}
		key, rest := s[:i], strings.TrimLeft(s[i:], " \t")
		if s[i] != '=' {
			rest = strings.TrimPrefix(rest, "=")
		} else {
			rest = rest[1:]
		}
		val := strings.TrimSpace(rest)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		if val == "" {
			return nil, fmt.Errorf("line %d: keyword %s without a value", num, quoteKeyword(key))
		}
		for _, c := range []byte(val) {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return nil, fmt.Errorf("line %d: control character in the value of %s", num, quoteKeyword(key))
			}
		}
		lines = append(lines, configLine{num: num, keyword: key, value: val})
	}
	return lines, nil
}

// quoteKeyword shows a keyword from the file safely in a message.
func quoteKeyword(k string) string {
	if len(k) > 64 {
		k = k[:64] + "..."
	}
	return strconv.Quote(k)
}

// normalizeKeyword makes a keyword or flag name comparable: lower case, without '-' and '_',
// so that "LoginGraceTime", "login-grace-time" and "login_grace_time" are one keyword.
func normalizeKeyword(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '_':
			return -1
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, k)
}

// applyConfig sets the flags of set from the configuration file data (read from path, for
// messages). Unknown keywords, keywords given twice and bad values are errors.
func applyConfig(set *flag.FlagSet, path string, data []byte) error {
	lines, err := parseConfig(data)
	if err != nil {
		return fmt.Errorf("rlogind: %s: %w", path, err)
	}
	byKey := make(map[string]*flag.Flag)
	set.VisitAll(func(f *flag.Flag) {
		if !commandLineOnly[f.Name] {
			byKey[normalizeKeyword(f.Name)] = f
		}
	})
	seen := make(map[string]int)
	for _, l := range lines {
		f := byKey[normalizeKeyword(l.keyword)]
		if f == nil {
			return fmt.Errorf("rlogind: %s: line %d: unknown keyword %s", path, l.num, quoteKeyword(l.keyword))
		}
		if prev, dup := seen[f.Name]; dup {
			return fmt.Errorf("rlogind: %s: line %d: %s already set on line %d", path, l.num, f.Name, prev)
		}
		seen[f.Name] = l.num
		val := l.value
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			switch strings.ToLower(val) {
			case "yes", "true", "on", "1":
				val = "true"
			case "no", "false", "off", "0":
				val = "false"
			default:
				return fmt.Errorf("rlogind: %s: line %d: %s: want yes or no", path, l.num, f.Name)
			}
		}
		if err := set.Set(f.Name, val); err != nil {
			return fmt.Errorf("rlogind: %s: line %d: %w", path, l.num, &valueError{name: f.Name, value: val, keyword: true, err: err})
		}
	}
	return nil
}
