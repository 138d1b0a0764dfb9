//go:build !linux

package daemon

// physicalMemory is unknown here: only the fixed bounds apply.
func physicalMemory() int64 { return 0 }
