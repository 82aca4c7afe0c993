package socks6

import "unsafe"

func cmsgPtr(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
