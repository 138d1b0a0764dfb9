//go:build !noasm && gc

package simd

// The arm64 kernels. Each assembly stub below works on whole chunks only (a
// multiple of 4 floats, or whole blocks) and never loads past the length of
// a slice it is given; the Go function above it cuts the chunks and finishes
// the tail. A stub's doc comment is the loop it computes.
//
// neon uses only ASIMD, the arm64 baseline. sdot adds the ARMv8.2 dot
// product instructions (SDOT) for the int8 dot products.

// dotF32NEON is dot_f32: the asm keeps eight vector sums of fused
// multiply-adds; the tail of fewer than 4 values is added in Go.
func dotF32NEON(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 3
	var s float32
	if n > 0 {
		s = dotF32NEONAsm(a[:n], b[:n])
	}
	for i := n; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

// dotF32NEONAsm returns the dot product of a and b.
// len(a) must be a multiple of 4 and len(b) >= len(a).
//
//	var s float32
//	for i := range a {
//		s += a[i] * b[i]
//	}
//	return s
//
//go:noescape
func dotF32NEONAsm(a, b []float32) float32

func axpyF32NEON(alpha float32, x, y []float32) {
	y = y[:len(x)]
	n := len(x) &^ 3
	if n > 0 {
		axpyF32NEONAsm(alpha, x[:n], y[:n])
	}
	for i := n; i < len(x); i++ {
		y[i] += alpha * x[i]
	}
}

// axpyF32NEONAsm adds alpha*x to y with one rounding per value (FMLA).
// len(x) must be a multiple of 4 and len(y) >= len(x).
//
//	for i := range x {
//		y[i] += alpha * x[i]
//	}
//
//go:noescape
func axpyF32NEONAsm(alpha float32, x, y []float32)

func scaleAddF32NEON(a float32, x []float32, b float32, y []float32) {
	y = y[:len(x)]
	n := len(x) &^ 3
	if n > 0 {
		scaleAddF32NEONAsm(a, x[:n], b, y[:n])
	}
	for i := n; i < len(x); i++ {
		y[i] = a*x[i] + b*y[i]
	}
}

// scaleAddF32NEONAsm sets y to a*x + b*y: it rounds b*y, then adds a*x with
// a fused multiply-add. len(x) must be a multiple of 4 and len(y) >= len(x).
//
//	for i := range x {
//		y[i] = a*x[i] + b*y[i]
//	}
//
//go:noescape
func scaleAddF32NEONAsm(a float32, x []float32, b float32, y []float32)

// gemvF32NEON runs the asm on groups of four rows, which share each load of
// x, then adds the last len(x)%4 columns of those rows in Go; the last
// len(dst)%4 rows are plain dot products.
func gemvF32NEON(dst, m, x []float32) {
	n := len(x)
	m = m[:len(dst)*n]
	r4 := len(dst) &^ 3
	if r4 > 0 {
		gemvF32NEONAsm(dst[:r4], m[:r4*n], x)
		if n4 := n &^ 3; n4 < n {
			for r := range r4 {
				row := m[r*n : r*n+n]
				s := dst[r]
				for i := n4; i < n; i++ {
					s += row[i] * x[i]
				}
				dst[r] = s
			}
		}
	}
	for r := r4; r < len(dst); r++ {
		dst[r] = dotF32NEON(m[r*n:r*n+n], x)
	}
}

// gemvF32NEONAsm sets dst[r] to the dot product of x with the first
// len(x)&^3 values of row r of m, whose rows are len(x) values apart.
// len(dst) must be a multiple of 4 and len(m) == len(dst)*len(x).
//
//	n, n4 := len(x), len(x)&^3
//	for r := range dst {
//		var s float32
//		for i := range n4 {
//			s += m[r*n+i] * x[i]
//		}
//		dst[r] = s
//	}
//
//go:noescape
func gemvF32NEONAsm(dst, m, x []float32)

// quantizeQ8NEON quantizes the whole blocks of x in asm, then copies a last
// partial block into a zero-padded buffer and quantizes that: zeros change
// neither the block's largest |x| nor its sum, and they quantize to the
// zero padding the contract asks for.
func quantizeQ8NEON(q []int8, scales []float32, sums []int32, x []float32) {
	nb := len(x) / BlockSize
	if nb > 0 {
		quantizeQ8NEONAsm(q[:nb*BlockSize], scales[:nb], sums[:nb], x[:nb*BlockSize])
	}
	if nb < len(scales) {
		var buf [BlockSize]float32
		copy(buf[:], x[nb*BlockSize:])
		quantizeQ8NEONAsm(q[nb*BlockSize:(nb+1)*BlockSize], scales[nb:nb+1], sums[nb:nb+1], buf[:])
	}
}

// quantizeQ8NEONAsm quantizes len(scales) whole blocks of x, bit for bit as
// quantizeQ8Generic does: the block maximum is taken on the bit patterns of
// |x|, d = amax/127 and id = 1/d are rounded to float32 separately, FCVTNS
// rounds x*id half to even. len(x) and len(q) must be len(scales)*BlockSize
// and len(sums) >= len(scales).
//
//	for k := range scales {
//		amax := max over x[k*32:k*32+32] of Float32bits(v)&0x7fffffff
//		switch {
//		case amax >= 0x7f800000: // NaN or Inf
//			q[k*32:k*32+32], sums[k], scales[k] = 0, 0, NaN
//		case amax < 0x0f800000: // tiny
//			q[k*32:k*32+32], sums[k], scales[k] = 0, 0, 0
//		default:
//			d := Float32frombits(amax) / 127
//			id := 1 / d
//			q[i] = int8(clamp(roundEven(x[i]*id), -127, 127)) for the block
//			sums[k], scales[k] = sum of the block's q, d
//		}
//	}
//
//go:noescape
func quantizeQ8NEONAsm(q []int8, scales []float32, sums []int32, x []float32)

func dequantizeQ8NEON(dst []float32, q []int8, scales []float32) {
	q = q[:len(dst)]
	nb := len(dst) / BlockSize
	if nb > 0 {
		dequantizeQ8NEONAsm(dst[:nb*BlockSize], q[:nb*BlockSize], scales[:nb])
	}
	if n := nb * BlockSize; n < len(dst) {
		dequantizeQ8Generic(dst[n:], q[n:], scales[nb:])
	}
}

// dequantizeQ8NEONAsm writes len(scales) whole blocks of q, scaled, to dst.
// len(dst) and len(q) must be len(scales)*BlockSize.
//
//	for i := range dst {
//		dst[i] = float32(q[i]) * scales[i/32]
//	}
//
//go:noescape
func dequantizeQ8NEONAsm(dst []float32, q []int8, scales []float32)

// The q8 and q4 dot products add the blocks' scaled sums in block order with
// one fused multiply-add each, as the Go compiler builds the generic loop for
// arm64, so today they return its bits there; the tests only ask for the
// documented tolerance.

func dotQ8NEON(a, b Q8) float32 {
	nb := len(a.Scales)
	return dotQ8NEONAsm(a.Q[:nb*BlockSize], b.Q[:nb*BlockSize], a.Scales, b.Scales[:nb])
}

// dotQ8NEONAsm returns the q8 dot product of len(as) whole blocks.
// Products of full-range int8 (-128 included) widen to int16 (SMULL), pairs
// of them add into int32 (SADALP), so nothing saturates. len(a) and len(b)
// must be len(as)*BlockSize and len(bs) >= len(as).
//
//	var sum float32
//	for k := range as {
//		var s int32
//		for i := k * 32; i < k*32+32; i++ {
//			s += int32(a[i]) * int32(b[i])
//		}
//		sum += float32(s) * (as[k] * bs[k]) // fused
//	}
//	return sum
//
//go:noescape
func dotQ8NEONAsm(a, b []int8, as, bs []float32) float32

func dotQ8SDOT(a, b Q8) float32 {
	nb := len(a.Scales)
	return dotQ8SDOTAsm(a.Q[:nb*BlockSize], b.Q[:nb*BlockSize], a.Scales, b.Scales[:nb])
}

// dotQ8SDOTAsm computes what dotQ8NEONAsm does with SDOT, which needs the
// ARMv8.2 dot product extension (ASIMDDP).
//
//go:noescape
func dotQ8SDOTAsm(a, b []int8, as, bs []float32) float32

func dotQ4NEON(w Q4, x Q8) float32 {
	nb := len(w.Scales)
	return dotQ4NEONAsm(w.Q[:nb*BlockSize/2], x.Q[:nb*BlockSize], w.Scales, x.Scales[:nb])
}

// dotQ4NEONAsm returns the q4 · q8 dot product of len(ws) whole blocks. Both
// nibbles are decoded to int8 in [-8, 7]; a product is at most 8*128 in
// magnitude, so two of them add in int16 (SMULL, SMLAL) before SADALP
// widens to int32. len(w) must be len(ws)*16, len(x) len(ws)*32 and
// len(xs) >= len(ws).
//
//	var sum float32
//	for k := range ws {
//		var s int32
//		for j := range 16 {
//			v := w[k*16+j]
//			s += (int32(v&15) - 8) * int32(x[k*32+j])
//			s += (int32(v>>4) - 8) * int32(x[k*32+j+16])
//		}
//		sum += float32(s) * (ws[k] * xs[k]) // fused
//	}
//	return sum
//
//go:noescape
func dotQ4NEONAsm(w []uint8, x []int8, ws, xs []float32) float32

func dotQ4SDOT(w Q4, x Q8) float32 {
	nb := len(w.Scales)
	return dotQ4SDOTAsm(w.Q[:nb*BlockSize/2], x.Q[:nb*BlockSize], w.Scales, x.Scales[:nb])
}

// dotQ4SDOTAsm computes what dotQ4NEONAsm does with SDOT (ASIMDDP).
//
//go:noescape
func dotQ4SDOTAsm(w []uint8, x []int8, ws, xs []float32) float32
