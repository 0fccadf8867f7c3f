package classic

import "syscall"

func syscallECONNRESET() error { return syscall.ECONNRESET }
