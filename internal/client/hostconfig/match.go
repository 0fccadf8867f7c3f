package hostconfig

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// matcher decides whether a Host or Match block applies. host is the name given on the command
// line, target the host name so far (HostName's value once a line set it, else host).
type matcher interface {
	matches(host, target string) bool
}

// patternList is a list of host patterns as ssh's match_pattern_list takes it: it matches when
// some pattern matches and no negated ('!') pattern does.
type patternList []string

func (pl patternList) match(name string) bool {
	name = strings.ToLower(name)
	matched := false
	for _, p := range pl {
		negated := strings.HasPrefix(p, "!")
		if ok, _ := path.Match(strings.ToLower(strings.TrimPrefix(p, "!")), name); ok {
			if negated {
				return false
			}
			matched = true
		}
	}
	return matched
}

// checkPatterns refuses patterns that path.Match would misread: rlogin's patterns know only '*'
// and '?', as ssh's, so '[' and '\' are refused rather than taken as classes or escapes.
func checkPatterns(pl []string) (patternList, error) {
	for _, p := range pl {
		q := strings.TrimPrefix(p, "!")
		if q == "" {
			return nil, fmt.Errorf("empty pattern in %q", p)
		}
		if strings.ContainsAny(q, `[]\`) {
			return nil, fmt.Errorf("pattern %q: only * and ? are wildcards", p)
		}
	}
	return patternList(pl), nil
}

// hostBlock is "Host pattern...": the name given on the command line matches.
type hostBlock struct{ patterns patternList }

func (b hostBlock) matches(host, _ string) bool { return b.patterns.match(host) }

func hostMatcher(args []string) (matcher, error) {
	pl, err := checkPatterns(args)
	if err != nil {
		return nil, err
	}
	return hostBlock{pl}, nil
}

// matchBlock is "Match criterion...": all its criteria hold. rlogin knows ssh's "all", "host
// patterns" (the host name so far, HostName's value once set) and "originalhost patterns" (the
// name given), each criterion negated by a leading '!'.
type matchBlock struct{ criteria []criterion }

type criterion struct {
	kind     string // "all", "host", "originalhost"
	negated  bool
	patterns patternList
}

func (b matchBlock) matches(host, target string) bool {
	for _, c := range b.criteria {
		var ok bool
		switch c.kind {
		case "all":
			ok = true
		case "host":
			ok = c.patterns.match(target)
		case "originalhost":
			ok = c.patterns.match(host)
		}
		if ok == c.negated {
			return false
		}
	}
	return true
}

func matchMatcher(args []string) (matcher, error) {
	var b matchBlock
	for i := 0; i < len(args); i++ {
		c := criterion{kind: strings.ToLower(args[i])}
		c.negated = strings.HasPrefix(c.kind, "!")
		c.kind = strings.TrimPrefix(c.kind, "!")
		switch c.kind {
		case "all":
			if len(args) != 1 {
				return nil, errors.New("Match all takes nothing else")
			}
		case "host", "originalhost":
			if i+1 == len(args) {
				return nil, fmt.Errorf("Match %s: missing patterns", c.kind)
			}
			i++
			pl, err := checkPatterns(strings.Split(args[i], ","))
			if err != nil {
				return nil, err
			}
			c.patterns = pl
		default:
			return nil, fmt.Errorf("unsupported Match criterion %q (rlogin knows all, host and originalhost)", args[i])
		}
		b.criteria = append(b.criteria, c)
	}
	return b, nil
}
