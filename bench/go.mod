module github.com/rlogin-go/rlogin/bench

go 1.26.8

require (
	github.com/creack/pty v1.1.24
	github.com/rlogin-go/rlogin v0.0.0
	go.uber.org/goleak v1.3.0
	golang.org/x/crypto v0.59.0
	golang.org/x/image v0.48.0
	golang.org/x/sys v0.50.0
)

// The benchmarks measure the commands of the repository they sit in.
replace github.com/rlogin-go/rlogin => ../
