package simd

import "math"

// The generic kernels are the reference every other kernel is tested
// against, and what GOARCH=arm and noasm builds run. They are plain loops,
// unrolled where four independent sums let the CPU overlap the adds.

func dotF32Generic(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpyF32Generic(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

func scaleAddF32Generic(a float32, x []float32, b float32, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] = a*v + b*y[i]
	}
}

func gemvF32Generic(dst, m, x []float32) {
	n := len(x)
	for r := range dst {
		dst[r] = dotF32Generic(m[r*n:r*n+n], x)
	}
}

// Quantization thresholds on the bit pattern of a block's largest |x|.
const (
	nonFiniteBits = 0x7f800000 // +Inf: at or above it the block has a NaN or Inf
	tinyBits      = 0x0f800000 // 2^-96: below it the block is stored as zero
)

// quantizeQ8Generic quantizes x into whole blocks of q. It works on bit
// patterns for the maximum so NaN ordering cannot differ between kernels.
func quantizeQ8Generic(q []int8, scales []float32, sums []int32, x []float32) {
	for k := range scales {
		lo := k * BlockSize
		hi := min(lo+BlockSize, len(x))
		qb := q[lo : lo+BlockSize]
		var amax uint32
		for _, v := range x[lo:hi] {
			amax = max(amax, math.Float32bits(v)&0x7fffffff)
		}
		if amax >= nonFiniteBits || amax < tinyBits {
			clear(qb)
			sums[k] = 0
			scales[k] = 0
			if amax >= nonFiniteBits {
				scales[k] = float32(math.NaN())
			}
			continue
		}
		d := math.Float32frombits(amax) / 127
		id := 1 / d
		var sum int32
		for i, v := range x[lo:hi] {
			r := roundEven(v * id)
			r = max(-127, min(127, r))
			qb[i] = int8(r)
			sum += r
		}
		clear(qb[hi-lo:])
		sums[k] = sum
		scales[k] = d
	}
}

// roundEven rounds to the nearest integer, ties to even, as CVTPS2DQ and
// FCVTNS do. The float32 product v is exact in float64.
func roundEven(v float32) int32 {
	return int32(math.RoundToEven(float64(v)))
}

func dequantizeQ8Generic(dst []float32, q []int8, scales []float32) {
	q = q[:len(dst)]
	for i, v := range q {
		dst[i] = float32(v) * scales[i/BlockSize]
	}
}

func dotQ8Generic(a, b Q8) float32 {
	var sum float32
	for k, as := range a.Scales {
		qa := a.Q[k*BlockSize : k*BlockSize+BlockSize]
		qb := b.Q[k*BlockSize : k*BlockSize+BlockSize]
		var s int32
		for i, v := range qa {
			s += int32(v) * int32(qb[i])
		}
		sum += float32(s) * (as * b.Scales[k])
	}
	return sum
}

func dotQ4Generic(w Q4, x Q8) float32 {
	var sum float32
	for k, ws := range w.Scales {
		qw := w.Q[k*BlockSize/2 : k*BlockSize/2+BlockSize/2]
		qx := x.Q[k*BlockSize : k*BlockSize+BlockSize]
		var s int32
		for j, v := range qw {
			s += (int32(v&15) - 8) * int32(qx[j])
			s += (int32(v>>4) - 8) * int32(qx[j+BlockSize/2])
		}
		sum += float32(s) * (ws * x.Scales[k])
	}
	return sum
}

// QuantizeQ4 quantizes x into dst (dst.N == len(x)) with values in [-7, 7]:
// a block's scale is its largest |x| / 7. It runs once per model, so it has
// only this generic version. Non-finite and tiny blocks are handled as in
// QuantizeQ8.
func QuantizeQ4(dst Q4, x []float32) {
	if dst.N != len(x) {
		mismatch("quantize_q4", dst.N, len(x))
	}
	if err := dst.Check(); err != nil {
		panic(err.Error())
	}
	for k := range dst.Scales {
		lo := k * BlockSize
		hi := min(lo+BlockSize, len(x))
		qb := dst.Q[k*BlockSize/2 : k*BlockSize/2+BlockSize/2]
		var amax uint32
		for _, v := range x[lo:hi] {
			amax = max(amax, math.Float32bits(v)&0x7fffffff)
		}
		for i := range qb {
			qb[i] = 0x88
		}
		if amax >= nonFiniteBits || amax < tinyBits {
			dst.Scales[k] = 0
			if amax >= nonFiniteBits {
				dst.Scales[k] = float32(math.NaN())
			}
			continue
		}
		d := math.Float32frombits(amax) / 7
		id := 1 / d
		for i, v := range x[lo:hi] {
			r := uint8(max(-7, min(7, roundEven(v*id))) + 8)
			if i < BlockSize/2 {
				qb[i] = qb[i]&0xf0 | r
			} else {
				qb[i-BlockSize/2] = qb[i-BlockSize/2]&0x0f | r<<4
			}
		}
		dst.Scales[k] = d
	}
}

// DequantizeQ4 writes the values of v to dst. It panics unless len(dst) == v.N.
func DequantizeQ4(dst []float32, v Q4) {
	if v.N != len(dst) {
		mismatch("dequantize_q4", v.N, len(dst))
	}
	if err := v.Check(); err != nil {
		panic(err.Error())
	}
	for i := range dst {
		k, j := i/BlockSize, i%BlockSize
		b := v.Q[k*BlockSize/2+j%(BlockSize/2)]
		if j >= BlockSize/2 {
			b >>= 4
		}
		dst[i] = float32(int32(b&15)-8) * v.Scales[k]
	}
}
