package simd

import (
	"encoding/binary"
	"math"
	"testing"
)

// The fuzz targets compare every kernel this CPU can run with the generic
// one, bit for bit. Scales are 1 so that every float sum is an exact
// integer whatever the order of the adds (n <= exactLimit).

// q8FromBytes fills a Q8 of up to max values with the bytes of data,
// full int8 range, and unit scales.
func q8FromBytes(data []byte, n int) Q8 {
	v := NewQ8(n)
	for i := range n {
		v.Q[i] = int8(data[i])
	}
	for k := range v.Scales {
		v.Scales[k] = 1
		v.Sums[k] = sumInt8(v.Q[k*BlockSize : (k+1)*BlockSize])
	}
	return v
}

func FuzzDotQ8(f *testing.F) {
	f.Add([]byte{0x80, 0x80, 0x80, 0x80})
	f.Add(make([]byte, 66))
	ff := make([]byte, 2*exactLimit)
	for i := range ff {
		ff[i] = 0x80
	}
	f.Add(ff)
	f.Fuzz(func(t *testing.T, data []byte) {
		n := min(len(data)/2, exactLimit)
		a, b := q8FromBytes(data, n), q8FromBytes(data[n:], n)
		want := dotQ8Generic(a, b)
		for _, im := range dotQ8.impls {
			if got := im.fn(a, b); math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%s: n=%d: got %v, want %v", im.name, n, got, want)
			}
		}
	})
}

func FuzzDotQ4(f *testing.F) {
	f.Add([]byte{0x00, 0x80, 0xff, 0x7f})
	f.Add(make([]byte, 100))
	ff := make([]byte, exactLimit+exactLimit/2)
	for i := range ff {
		ff[i] = 0x80
	}
	f.Add(ff)
	f.Fuzz(func(t *testing.T, data []byte) {
		// n values need n bytes of x and n/2 bytes of nibbles.
		n := min(len(data)*2/3, exactLimit)
		x := q8FromBytes(data, n)
		w := NewQ4(n)
		copy(w.Q, data[n:])
		for k := range w.Scales {
			w.Scales[k] = 1
		}
		// The padding of the last block must decode to zero.
		for i := n; i < len(w.Scales)*BlockSize; i++ {
			k, j := i/BlockSize, i%BlockSize
			p := &w.Q[k*BlockSize/2+j%(BlockSize/2)]
			if j < BlockSize/2 {
				*p = *p&0xf0 | 8
			} else {
				*p = *p&0x0f | 0x80
			}
		}
		want := dotQ4Generic(w, x)
		for _, im := range dotQ4.impls {
			if got := im.fn(w, x); math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%s: n=%d: got %v, want %v", im.name, n, got, want)
			}
		}
	})
}

func FuzzQuantizeQ8(f *testing.F) {
	seed := func(vs ...float32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	}
	f.Add(seed(1, -1, 0.5, -0.5, 127, 63.5))
	f.Add(seed(float32(math.Inf(-1)), 1))
	f.Add(seed(1e-30, -1e-29, 0x1p-96, 0x1p-97))
	f.Add(seed(-0.0, 2.5, 3.5, -2.5, 1e38, -3e38))
	f.Fuzz(func(t *testing.T, data []byte) {
		x := make([]float32, min(len(data)/4, 4096))
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		want := guardedQ8(len(x))
		quantizeQ8Generic(want.Q, want.Scales, want.Sums, x)
		for _, im := range quantizeQ8.impls {
			got := guardedQ8(len(x))
			im.fn(got.Q, got.Scales, got.Sums, x)
			sameQ8(t, im.name, got, want)
			q8GuardsIntact(t, got)
		}
	})
}
