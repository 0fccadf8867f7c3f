package logintest

// Close closes the session's connection at once, as a client that goes away does; the session's
// end is still waited for at the end of the test.
func (r *Remote) Close() error { return r.c.Close() }
