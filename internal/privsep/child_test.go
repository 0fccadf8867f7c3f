package privsep

// childEnv names the scenario a re-executed test binary runs as a net child.
const childEnv = "PRIVSEP_TEST_CHILD"

func runChild(scenario string) int { return 2 }
