//go:build race

package rawio

// checkEachCall makes Read and Write check their descriptor first (check: two more system
// calls) in race-enabled builds, which is how the tests run: a caller that hands them a
// descriptor that can block then fails its tests with ErrMayBlock, instead of stalling the
// whole process in production once the descriptor does block.
const checkEachCall = true
