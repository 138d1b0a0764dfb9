//go:build !linux

package model

// mapSlab maps nothing here: slabs are allocated on the heap.
func mapSlab(*stateArena, int) []byte { return nil }
