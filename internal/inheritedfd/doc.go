// Package inheritedfd closes the descriptors a program inherited when it was started, so that
// none of them reaches the programs it starts in turn.
//
// A daemon started from a shell, a script or a service manager may inherit open descriptors
// beyond standard input, output and error: a file the administrator's shell held open
// (`rlogind 251<secret`), a pipe of the script that started it, a socket of the service
// manager. Every program the daemon starts would inherit them again, a user's login shell among
// them, which could then read or write them. sshd closes them at start (closefrom); Close does
// the same.
//
// Typical usage, first thing in main, keeping the sockets systemd passed (descriptors 3 to
// 3+n-1) and standard input, output and error:
//
//	func main() {
//		n := systemd.ListenFDs(os.Getenv, os.Getpid())
//		if err := inheritedfd.Close(inheritedfd.Range(systemd.ListenFDsStart, n)...); err != nil {
//			log.Printf("rlogind: %v", err)
//		}
//		...
//	}
//
// Close never closes a descriptor the program opened itself, whenever it runs: a descriptor is
// taken as inherited when it does not have the close-on-exec flag, which every descriptor the
// Go runtime and the standard library open has and no inherited one can have (the kernel closed
// those at the exec). So a Go program may call Close after its runtime has set up the network
// poller or opened a profile file.
package inheritedfd
