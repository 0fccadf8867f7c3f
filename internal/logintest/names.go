package logintest

import "strings"

// HostileUserNames returns user names a client may send that must never reach login(1) (as an
// option or at all): CVE-1999-0113 and its descendants, separators, controls, over-long names.
func HostileUserNames() []string {
	return []string{
		"-froot", "-f root", "-f", "-", "--", "-h", "-p", "-r", "root -f", "-froot\x00", "root\x00-f",
		"a b", " root", "root ", "a\x00b", "a\rb", "a\nb", "root\n", "\troot", "r\x1b[31moot", "",
		strings.Repeat("a", 33), "ro\u00f6t", "../root", "a/b", "root;id", "$(id)", "a:b", "USER=root",
	}
}
