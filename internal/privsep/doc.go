// Package privsep holds the pieces of rlogind's privilege separation in system mode: the
// messages between a connection's privileged monitor and its unprivileged net child, the
// channel that carries them, the host key as the net child holds it, and the sandbox the net
// child runs in (a dynamic uid of its own, no_new_privs, rlimits, a seccomp filter).
//
// Typical usage, in the monitor (root, one per connection):
//
//	monitorEnd, netEnd, err := privsep.Pair()
//	lease, err := privsep.LeaseUID(privsep.DefaultUIDDir, privsep.DefaultUIDRange())
//	cmd := privsep.NetCommand(exe, lease, netEnd, conn) // the net child: fd 3, then conn as 4
//	cmd.Args = append(cmd.Args, netRoleArgs...) // how the binary learns its role is the caller's
//	err = cmd.Start()
//	netEnd.Close()
//	ch, err := privsep.NewFileChannel(monitorEnd, privsep.MonitorSide)
//	hostKey, err := privsep.NewHostKeyHolder(key)
//	conv := privsep.NewConversation(maxAuthTries)
//	for {
//		m, _, err := ch.Receive() // any error ends the connection
//		err = conv.Received(m)    // out of order: end the connection
//		switch m := m.(type) {
//		case *privsep.Sign:
//			sig, err := hostKey.Answer(m) // refused: end the connection
//			err = conv.Sending(sig)
//			err = ch.Send(sig)
//		case *privsep.Login:
//			// authorize, PROMPT and ANSWER, then ch.Send(&privsep.Accept{}, ptyMaster),
//			// each reply checked by conv.Sending first
//		}
//	}
//
// and when the session is over: cmd.Wait(), then lease.Release(). In the net child, the same
// binary started by NetCommand:
//
//	if err := privsep.Confine(); err != nil { ... } // first thing
//	ch, err := privsep.NewFileChannel(os.NewFile(privsep.ChannelFD, "privsep"), privsep.NetSide)
//	signer := privsep.NewHostKeySigner(ch, hostPublicKey)
//	sc, err := transport.Server(ctx, conn, &transport.SecureConfig{Key: signer, ...})
//	err = ch.Send(&privsep.Login{...})
//
// The message set, its encoding and its bounds are specified in docs/privsep-messages.md;
// both ends' decoders are strict (bounded lengths, no trailing bytes, unknown types refused,
// every field checked for what it may hold) and fuzzed. A Channel refuses a message that
// breaks them and closes any descriptors that came with it.
package privsep
