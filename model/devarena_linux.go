package model

import (
	"runtime"
	"syscall"
)

// mapSlab maps n bytes of anonymous memory outside the Go heap, returned
// to the system once a is unreachable (every device of a is then gone
// too: nothing else refers to the slab). It returns nil if the mapping
// fails.
func mapSlab(a *stateArena, n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil
	}
	runtime.AddCleanup(a, func(b []byte) { _ = syscall.Munmap(b) }, b)
	return b
}
