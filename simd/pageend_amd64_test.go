//go:build !noasm && gc && (linux || darwin)

package simd

import (
	"math"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"unsafe"
)

// pageEnd returns a slice of n values of type T that ends exactly where a
// page that cannot be read begins, so a kernel that loads past the end
// faults. The values are filled by fill.
func pageEnd[T any](t *testing.T, n int, fill func(i int) T) []T {
	t.Helper()
	var zero T
	size := int(unsafe.Sizeof(zero))
	page := syscall.Getpagesize()
	span := (n*size + page - 1) / page * page
	mem, err := syscall.Mmap(-1, 0, span+page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[span:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		return nil
	}
	s := unsafe.Slice((*T)(unsafe.Pointer(&mem[span-n*size])), n)
	for i := range s {
		s[i] = fill(i)
	}
	return s
}

// TestPageEnd runs every kernel on inputs that end at an unreadable page:
// a load past len faults and fails the test. It also checks the results.
func TestPageEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	randf := func(int) float32 { return float32(rng.NormFloat64()) }
	randb := func(int) int8 { return int8(rng.IntN(256) - 128) }
	ones := func(int) float32 { return 1 }
	var lengths []int
	for n := 0; n <= 100; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1000)

	for _, n := range lengths {
		a, b := pageEnd(t, n, randf), pageEnd(t, n, randf)
		want, abs := refDot(a, b)
		for _, im := range dotF32.impls {
			if got := im.fn(a, b); !(math.Abs(float64(got)-want) <= dotBound(n, abs)) {
				t.Fatalf("dot_f32 %s n=%d: got %v, want %v", im.name, n, got, want)
			}
		}
		for _, im := range axpyF32.impls {
			y := pageEnd(t, n, randf)
			y0 := slices.Clone(y)
			im.fn(0.5, a, y)
			for i := range y {
				if d := math.Abs(float64(y[i]) - (float64(y0[i]) + 0.5*float64(a[i]))); d > 1e-5 {
					t.Fatalf("axpy_f32 %s n=%d i=%d: off by %g", im.name, n, i, d)
				}
			}
		}
		for _, im := range scaleAddF32.impls {
			y := pageEnd(t, n, randf)
			y0 := slices.Clone(y)
			im.fn(0.5, a, 2, y)
			for i := range y {
				if d := math.Abs(float64(y[i]) - (0.5*float64(a[i]) + 2*float64(y0[i]))); d > 1e-5 {
					t.Fatalf("scale_add_f32 %s n=%d i=%d: off by %g", im.name, n, i, d)
				}
			}
		}
		if n > 0 && n <= 300 {
			const rows = 5
			m := pageEnd(t, rows*n, randf)
			for _, im := range gemvF32.impls {
				dst := pageEnd(t, rows, randf)
				im.fn(dst, m, b)
				for r := range dst {
					want, abs := refDot(m[r*n:r*n+n], b)
					if !(math.Abs(float64(dst[r])-want) <= dotBound(n, abs)) {
						t.Fatalf("gemv_f32 %s n=%d row %d: got %v, want %v", im.name, n, r, dst[r], want)
					}
				}
			}
		}

		// Quantized vectors: every slice ends at a page.
		nb := Blocks(n)
		want8 := NewQ8(n)
		quantizeQ8Generic(want8.Q, want8.Scales, want8.Sums, a)
		for _, im := range quantizeQ8.impls {
			got := Q8{N: n, Q: pageEnd(t, nb*BlockSize, randb), Scales: pageEnd(t, nb, randf), Sums: pageEnd(t, nb, func(int) int32 { return 7 })}
			im.fn(got.Q, got.Scales, got.Sums, a)
			sameQ8(t, "quantize_q8 "+im.name, got, want8)
		}
		q := pageEnd(t, n, randb)
		scales := pageEnd(t, nb, randf)
		wantD := make([]float32, n)
		dequantizeQ8Generic(wantD, q, scales)
		for _, im := range dequantizeQ8.impls {
			dst := pageEnd(t, n, randf)
			im.fn(dst, q, scales)
			for i := range dst {
				if math.Float32bits(dst[i]) != math.Float32bits(wantD[i]) {
					t.Fatalf("dequantize_q8 %s n=%d: dst[%d] = %v, want %v", im.name, n, i, dst[i], wantD[i])
				}
			}
		}
		qa := Q8{N: n, Q: pageEnd(t, nb*BlockSize, randb), Scales: pageEnd(t, nb, ones), Sums: pageEnd(t, nb, func(int) int32 { return 0 })}
		qb := Q8{N: n, Q: pageEnd(t, nb*BlockSize, randb), Scales: pageEnd(t, nb, ones), Sums: pageEnd(t, nb, func(int) int32 { return 0 })}
		for k := range nb {
			qa.Sums[k] = sumInt8(qa.Q[k*BlockSize : (k+1)*BlockSize])
			qb.Sums[k] = sumInt8(qb.Q[k*BlockSize : (k+1)*BlockSize])
		}
		w := Q4{N: n, Q: pageEnd(t, nb*BlockSize/2, func(int) uint8 { return uint8(rng.IntN(256)) }), Scales: pageEnd(t, nb, ones)}
		wantQ8, wantQ4 := dotQ8Generic(qa, qb), dotQ4Generic(w, qb)
		for _, im := range dotQ8.impls {
			if got := im.fn(qa, qb); got != wantQ8 {
				t.Fatalf("dot_q8 %s n=%d: got %v, want %v", im.name, n, got, wantQ8)
			}
		}
		for _, im := range dotQ4.impls {
			if got := im.fn(w, qb); got != wantQ4 {
				t.Fatalf("dot_q4 %s n=%d: got %v, want %v", im.name, n, got, wantQ4)
			}
		}
	}
}
