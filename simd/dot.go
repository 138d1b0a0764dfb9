package simd

import "fmt"

// BlockSize is the number of values that share one scale in Q8 and Q4.
const BlockSize = 32

// Blocks returns how many blocks hold n values.
func Blocks(n int) int { return (n + BlockSize - 1) / BlockSize }

// Q8 is a vector of N values quantized block-wise to int8: value i is
// Q[i] * Scales[i/BlockSize]. Q is padded with zeros to whole blocks, so
// len(Q) == Blocks(N)*BlockSize; Sums[k] is the sum of block k's values.
// A Q8 owns its slices; NewQ8 allocates them.
type Q8 struct {
	N      int
	Q      []int8
	Scales []float32
	Sums   []int32
}

// NewQ8 returns a zero Q8 that holds n values.
func NewQ8(n int) Q8 {
	b := Blocks(n)
	return Q8{N: n, Q: make([]int8, b*BlockSize), Scales: make([]float32, b), Sums: make([]int32, b)}
}

// Check reports whether the slices of v have the lengths N asks for.
func (v Q8) Check() error {
	b := Blocks(v.N)
	if v.N < 0 || len(v.Q) != b*BlockSize || len(v.Scales) != b || len(v.Sums) != b {
		return fmt.Errorf("simd: Q8 of %d values has %d values, %d scales, %d sums; want %d, %d, %d",
			v.N, len(v.Q), len(v.Scales), len(v.Sums), b*BlockSize, b, b)
	}
	return nil
}

// Q4 is a vector of N values quantized block-wise to 4 bits, 16 bytes per
// block (see the package comment for the nibble order). Q is padded to whole
// blocks with the nibble 8, which decodes to zero.
type Q4 struct {
	N      int
	Q      []uint8
	Scales []float32
}

// NewQ4 returns a zero Q4 that holds n values.
func NewQ4(n int) Q4 {
	b := Blocks(n)
	q := make([]uint8, b*BlockSize/2)
	for i := range q {
		q[i] = 0x88
	}
	return Q4{N: n, Q: q, Scales: make([]float32, b)}
}

// Check reports whether the slices of v have the lengths N asks for.
func (v Q4) Check() error {
	b := Blocks(v.N)
	if v.N < 0 || len(v.Q) != b*BlockSize/2 || len(v.Scales) != b {
		return fmt.Errorf("simd: Q4 of %d values has %d bytes, %d scales; want %d, %d",
			v.N, len(v.Q), len(v.Scales), b*BlockSize/2, b)
	}
	return nil
}

func mismatch(op string, a, b int) {
	panic(fmt.Sprintf("simd: %s: length mismatch: %d and %d", op, a, b))
}

// DotF32 returns the dot product of a and b. It panics if their lengths differ.
func DotF32(a, b []float32) float32 {
	if len(a) != len(b) {
		mismatch(OpDotF32, len(a), len(b))
	}
	return dotF32.cur.fn(a, b)
}

// Axpy adds alpha*x to y. It panics if their lengths differ.
func Axpy(alpha float32, x, y []float32) {
	if len(x) != len(y) {
		mismatch(OpAxpyF32, len(x), len(y))
	}
	axpyF32.cur.fn(alpha, x, y)
}

// ScaleAdd sets y to a*x + b*y. It panics if their lengths differ.
// With b = 1 - lr*l2 and a = -lr*g it is one SGD step with L2 decay.
func ScaleAdd(a float32, x []float32, b float32, y []float32) {
	if len(x) != len(y) {
		mismatch(OpScaleAddF32, len(x), len(y))
	}
	scaleAddF32.cur.fn(a, x, b, y)
}

// Gemv sets dst[r] to the dot product of row r of the row-major matrix m with
// x: each row has len(x) values, and m has len(dst) rows. It panics if
// len(m) != len(dst)*len(x).
func Gemv(dst, m, x []float32) {
	if len(m) != len(dst)*len(x) {
		panic(fmt.Sprintf("simd: %s: matrix of %d values is not %d rows of %d", OpGemvF32, len(m), len(dst), len(x)))
	}
	if len(dst) == 0 {
		return
	}
	gemvF32.cur.fn(dst, m, x)
}

// QuantizeQ8 quantizes x into dst, which must hold len(x) values
// (dst.N == len(x)); it panics otherwise. dst's padding is zeroed.
func QuantizeQ8(dst Q8, x []float32) {
	if dst.N != len(x) {
		mismatch(OpQuantizeQ8, dst.N, len(x))
	}
	if err := dst.Check(); err != nil {
		panic(err.Error())
	}
	quantizeQ8.cur.fn(dst.Q, dst.Scales, dst.Sums, x)
}

// DequantizeQ8 writes the values of v to dst. It panics unless len(dst) == v.N.
func DequantizeQ8(dst []float32, v Q8) {
	if v.N != len(dst) {
		mismatch(OpDequantizeQ8, v.N, len(dst))
	}
	if err := v.Check(); err != nil {
		panic(err.Error())
	}
	dequantizeQ8.cur.fn(dst, v.Q[:v.N], v.Scales)
}

// DotQ8 returns the dot product of two Q8 vectors of the same length:
// the sum over blocks of a.Scales[k]*b.Scales[k]*(int32 dot of block k).
// It panics if the lengths differ or a slice is short.
func DotQ8(a, b Q8) float32 {
	if a.N != b.N {
		mismatch(OpDotQ8, a.N, b.N)
	}
	if err := a.Check(); err != nil {
		panic(err.Error())
	}
	if err := b.Check(); err != nil {
		panic(err.Error())
	}
	return dotQ8.cur.fn(a, b)
}

// DotQ4 returns the dot product of 4-bit weights w and int8 features x.
// It panics if the lengths differ or a slice is short.
func DotQ4(w Q4, x Q8) float32 {
	if w.N != x.N {
		mismatch(OpDotQ4, w.N, x.N)
	}
	if err := w.Check(); err != nil {
		panic(err.Error())
	}
	if err := x.Check(); err != nil {
		panic(err.Error())
	}
	return dotQ4.cur.fn(w, x)
}
