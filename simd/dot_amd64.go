//go:build !noasm && gc

package simd

// Float kernels for amd64. The AVX-512 kernels take whole slices and finish
// the last partial vector with masked loads and stores, which never touch
// memory past len. The AVX2 kernels have no such loads: their asm takes a
// multiple of 8 values and the Go wrapper finishes the tail in Go.

// dotF32AVX512 returns sum a[i]*b[i] over i < len(a), as dotF32Generic:
//
//	for i := range a { s += a[i] * b[i] }
//
// The asm assumes len(b) >= len(a). It keeps four accumulators of 16 lanes
// and fuses multiply and add, so the sum is reassociated.
//
//go:noescape
func dotF32AVX512(a, b []float32) float32

// dotF32AVX2 is dotF32AVX512 for 8-lane vectors. The asm assumes len(a) is
// a multiple of 8 and len(b) >= len(a).
//
//go:noescape
func dotF32AVX2(a, b []float32) float32

func dotF32AVX2Go(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 7
	s := dotF32AVX2(a[:n], b[:n])
	for i := n; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

// axpyF32AVX512 adds alpha*x to y:
//
//	for i := range x { y[i] += alpha * x[i] }
//
// with a fused multiply-add. The asm assumes len(y) >= len(x).
//
//go:noescape
func axpyF32AVX512(alpha float32, x, y []float32)

// axpyF32AVX2 is axpyF32AVX512 for 8-lane vectors. The asm assumes len(x)
// is a multiple of 8 and len(y) >= len(x).
//
//go:noescape
func axpyF32AVX2(alpha float32, x, y []float32)

func axpyF32AVX2Go(alpha float32, x, y []float32) {
	n := len(x) &^ 7
	axpyF32AVX2(alpha, x[:n], y[:n])
	if n < len(x) {
		axpyF32Generic(alpha, x[n:], y[n:len(x)])
	}
}

// scaleAddF32AVX512 sets y to a*x + b*y:
//
//	for i := range x { y[i] = a*x[i] + b*y[i] }
//
// rounding b*y[i] and then fusing a*x[i] into the add. The asm assumes
// len(y) >= len(x).
//
//go:noescape
func scaleAddF32AVX512(a float32, x []float32, b float32, y []float32)

// scaleAddF32AVX2 is scaleAddF32AVX512 for 8-lane vectors. The asm assumes
// len(x) is a multiple of 8 and len(y) >= len(x).
//
//go:noescape
func scaleAddF32AVX2(a float32, x []float32, b float32, y []float32)

func scaleAddF32AVX2Go(a float32, x []float32, b float32, y []float32) {
	n := len(x) &^ 7
	scaleAddF32AVX2(a, x[:n], b, y[:n])
	if n < len(x) {
		scaleAddF32Generic(a, x[n:], b, y[n:len(x)])
	}
}

// gemvF32AVX512 sets dst[r] to the dot product of row r of m with x:
//
//	n := len(x)
//	for r := range dst { dst[r] = dot(m[r*n:r*n+n], x) }
//
// It works on four rows at a time so that each load of x serves four rows.
// The asm assumes len(m) >= len(dst)*len(x).
//
//go:noescape
func gemvF32AVX512(dst, m, x []float32)

// gemvF32AVX2 is gemvF32AVX512 for 8-lane vectors over the first cols
// columns only: dst[r] = dot(m[r*n:r*n+cols], x[:cols]) with n = len(x).
// The asm assumes cols is a multiple of 8 and at most len(x).
//
//go:noescape
func gemvF32AVX2(dst, m, x []float32, cols int)

func gemvF32AVX2Go(dst, m, x []float32) {
	n := len(x)
	c := n &^ 7
	gemvF32AVX2(dst, m, x, c)
	if c < n {
		for r := range dst {
			dst[r] += dotF32Generic(m[r*n+c:r*n+n], x[c:])
		}
	}
}
