// Package privsep holds the pieces of rlogind's privilege separation in system mode: the
// messages between a connection's privileged monitor and its unprivileged net child, the
// channel that carries them, and the host key as the net child holds it.
//
// Typical usage, in the monitor (root, one per connection):
//
//	monitorEnd, netEnd, err := privsep.Pair()
//	// start the net child with netEnd as its fd 3, then close netEnd
//	ch, err := privsep.NewFileChannel(monitorEnd, privsep.MonitorSide)
//	hostKey, err := privsep.NewHostKeyHolder(key)
//	for {
//		m, files, err := ch.Receive() // the end of the connection on any error
//		switch m := m.(type) {
//		case *privsep.Sign:
//			sig, err := hostKey.Answer(m) // refused: end the connection
//			err = ch.Send(sig)
//		case *privsep.Login:
//			// authorize, PROMPT/ANSWER, then ch.Send(&privsep.Accept{}, ptyMaster)
//		}
//	}
//
// and in the net child:
//
//	ch, err := privsep.NewFileChannel(os.NewFile(3, "privsep"), privsep.NetSide)
//	signer := privsep.NewHostKeySigner(ch, hostPublicKey)
//	sc, err := transport.Server(ctx, conn, &transport.SecureConfig{Key: signer, ...})
//	err = ch.Send(&privsep.Login{...})
//
// The message set, its encoding and its bounds are specified in docs/privsep-messages.md;
// both ends' decoders are strict (bounded lengths, no trailing bytes, unknown types refused,
// every field checked for what it may hold) and fuzzed. A Channel refuses a message that
// breaks them and closes any descriptors that came with it.
package privsep
