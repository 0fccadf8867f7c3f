# Sourced by .ci/run and .ci/fuzz-long.

# fuzz_target DIR NAME FUZZTIME [FLAG...] runs one target, with go test's FLAGs if given. Go
# 1.26's fuzz coordinator can fail a target with a bare "context deadline exceeded" at the end of
# -fuzztime, under load, with no failing input (golang/go#75804, fixed in Go 1.27): that one
# outcome, and only when no new input was saved under testdata/fuzz/NAME, is run again once; any
# other failure fails.
fuzz_target() {
	local dir=$1 name=$2 fuzztime=$3 out
	shift 3
	for attempt in 1 2; do
		if out=$(go test -run "^$name\$" -fuzz "^$name\$" -fuzztime="$fuzztime" "$@" "./$dir" </dev/null 2>&1); then
			printf '%s\n' "$out" | tail -n 3
			return 0
		fi
		printf '%s\n' "$out"
		if [ "$attempt" = 1 ] && grep -q '^    context deadline exceeded$' <<<"$out" &&
			[ -z "$(git status --porcelain -- "$dir/testdata/fuzz/$name")" ]; then
			echo "($name: the Go fuzz coordinator's end-of-time race, golang/go#75804, no input saved: once more)"
			continue
		fi
		return 1
	done
}
