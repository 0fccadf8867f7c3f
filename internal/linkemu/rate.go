package linkemu

import (
	"fmt"
	"strconv"
	"strings"
)

// rateUnit is a suffix ParseRate takes, as tc(8) spells it.
type rateUnit struct {
	suffix string
	bits   int64
}

// rateUnits returns the units, largest first.
func rateUnits() []rateUnit {
	return []rateUnit{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}
}

// ParseRate parses a rate as tc(8) and netem write it, in bits per second: "20mbit", "1.5Mbit",
// "500kbit", "1gbit"; a "/s" after the unit is allowed, and a bare number is bits per
// second. "0" is no cap.
func ParseRate(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "/s")
	mult := int64(1)
	for _, u := range rateUnits() {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.bits
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || v < 0 || v*float64(mult) > 1e15 {
		return 0, fmt.Errorf("linkemu: rate %q: want a number of bits per second with an optional unit, such as 20mbit", s)
	}
	return int64(v * float64(mult)), nil
}

// FormatRate writes a rate in bits per second in the largest unit that keeps it readable, e.g.
// "20Mbit/s".
func FormatRate(bits int64) string {
	for _, u := range rateUnits() {
		if bits >= u.bits && u.bits > 1 {
			return strconv.FormatFloat(float64(bits)/float64(u.bits), 'f', -1, 64) + strings.ToUpper(u.suffix[:1]) + "bit/s"
		}
	}
	return strconv.FormatInt(bits, 10) + "bit/s"
}
