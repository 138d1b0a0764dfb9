package model

import "unsafe"

// stateArena holds the states of the resident devices of a Devices:
// fixed-size float32 slots in slabs of about slabBytes, allocated as
// devices arrive and reused as they leave.
//
// The states are most of a per-device gateway's memory: long-lived and
// free of pointers. On the Go heap the collector would count them as live
// data and, at the default GOGC, let as much garbage again accumulate
// before each cycle: 10,000 devices of 32 features are 23.8 MB of states,
// and would make room for 23.8 MB more of garbage. Where the system allows
// (devarena_linux.go), the slabs are mapped outside the heap, so they cost
// their size and the collector paces the pipeline's garbage by the rest of
// the heap alone. Elsewhere they are ordinary slices.
type stateArena struct {
	slot  int // float32 values per state
	per   int // slots per slab
	slabs [][]float32
	free  []int32 // released slots, reused last in first out
	next  int32   // slots handed out so far from the slabs' ends
	// mapped is the bytes of the slabs outside the Go heap.
	mapped int64
}

// slabBytes is the size of a slab (a larger state gets a slab of its own).
const slabBytes = 1 << 20

func newStateArena(slot int) *stateArena {
	return &stateArena{slot: slot, per: max(1, slabBytes/(4*slot))}
}

// alloc returns a free slot and its values, zeroed.
func (a *stateArena) alloc() (int32, []float32) {
	var s int32
	if n := len(a.free); n > 0 {
		s = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		s = a.next
		if int(s)/a.per == len(a.slabs) {
			a.slabs = append(a.slabs, a.newSlab())
		}
		a.next++
	}
	uv := a.at(s)
	clear(uv)
	return s, uv
}

// at returns slot s's values.
func (a *stateArena) at(s int32) []float32 {
	i, j := int(s)/a.per, int(s)%a.per*a.slot
	return a.slabs[i][j : j+a.slot : j+a.slot]
}

// release makes slot s free; its values must not be used after.
func (a *stateArena) release(s int32) { a.free = append(a.free, s) }

// bytes returns the size of the slabs.
func (a *stateArena) bytes() int64 { return int64(len(a.slabs)) * int64(a.per*a.slot) * 4 }

// reset releases every slot, keeping the slabs.
func (a *stateArena) reset() { a.free, a.next = a.free[:0], 0 }

// newSlab maps a slab of a.per slots (mapSlab), or allocates it on the
// heap where mapping fails.
func (a *stateArena) newSlab() []float32 {
	n := a.per * a.slot
	if b := mapSlab(a, 4*n); b != nil {
		a.mapped += int64(len(b))
		return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n)
	}
	return make([]float32, n)
}
