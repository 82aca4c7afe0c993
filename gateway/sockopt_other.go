//go:build !linux

package gateway

import "syscall"

// ApplyIPOptions marks pending TOS, TTL and DF options unsupported on this
// OS.
func ApplyIPOptions(fd uintptr, v6 bool, o *StackOptions) {
	unsupportIf(&o.TOS)
	unsupportIf(&o.TTL)
	unsupportIf(&o.DF)
}

// ApplyConnIPOptions is ApplyIPOptions on a connection's socket.
func ApplyConnIPOptions(c syscall.Conn, v6 bool, o *StackOptions) error {
	ApplyIPOptions(0, v6, o)
	return nil
}

// AppendIPCmsg returns oob unchanged on this OS.
func AppendIPCmsg(oob []byte, v6 bool, ttl, tos int) []byte { return oob }
