#!/usr/bin/env bash
# Runs the benchmarks, as root, on loopback. Installs what they need first (Debian/Ubuntu).
#
#   bench/run.sh [flags]          the suite: rlogin vs ssh vs netkit rlogin vs a bare pty
#   bench/run.sh scale [flags]    the scale benchmark: 1000 sessions, 10,000 login cycles
#   bench/run.sh wan [flags]      the WAN section: rlogin vs ssh through the link emulator
#   bench/run.sh exec [flags]     bulk data through rlogin host command vs ssh host command
#
# Flags go to the Go program (cd bench && go run ./cmd/rloginbench -h, or rloginscale -h); bench is
# a Go module of its own (bench/go.mod), which builds the repository's rlogin and rlogind.
# Results go to the terminal and into docs/benchmarks.md. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"

if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh: run me as root: the benchmarks create a temporary user and start sshd and in.rlogind" >&2
	exit 1
fi
if ! command -v go >/dev/null; then
	echo "bench/run.sh: Go 1.26 or newer is needed (https://go.dev/dl/); it builds rlogin and rlogind" >&2
	exit 1
fi

# The peers and tools, from Debian packages.
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/bin/ssh ] && [ -x /usr/bin/ssh-keygen ] || need+=(openssh-client)
[ -x /usr/sbin/in.rlogind ] || need+=(rsh-server)
[ -x /usr/bin/netkit-rlogin ] || need+=(rsh-client)
[ -x /usr/sbin/inetd ] || need+=(openbsd-inetd)
if ((${#need[@]})); then
	echo "bench/run.sh: installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
	# rsh-server adds rlogin/rsh/rexec to the system's /etc/inetd.conf: password-less .rhosts
	# logins on port 513 for anyone on the network. The benchmark runs its own inetd with its own
	# configuration, so switch those system entries off.
	if [[ " ${need[*]} " == *" rsh-server "* ]] && command -v update-inetd >/dev/null; then
		update-inetd --disable login,shell,exec || true
	fi
fi

case "${1:-}" in
scale)
	shift
	exec go run ./cmd/rloginscale "$@"
	;;
wan)
	shift
	exec go run ./cmd/rloginbench -wan "$@"
	;;
exec)
	shift
	exec go run ./cmd/execbench "$@"
	;;
*)
	exec go run ./cmd/rloginbench "$@"
	;;
esac
