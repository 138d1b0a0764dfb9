//go:build !noasm && gc

package simd

// Quantized kernels for amd64. Q8 and Q4 vectors hold whole blocks of 32
// values, so the dot kernels work on whole blocks: the AVX-512 ones finish
// the last partial group of 16 blocks with masked loads of scales and sums
// and 32-byte loads of an odd block, the 8-lane ones take the last 1..7
// blocks one at a time. Quantize and dequantize see len(x) and len(dst)
// values, which need not fill the last block. No asm reads past a slice's
// length (TestPageEnd checks it).
//
// The VNNI kernels and every dot_q4 kernel rely on Sums being the block
// sums, as the Q8 contract says; the AVX2 dot_q8 does not read Sums.

// dotQ8AVX512VNNI returns the dot product of two Q8 vectors, as
// dotQ8Generic:
//
//	for k := range sa {
//		var s int32
//		for i := k*32; i < k*32+32; i++ { s += int32(qa[i]) * int32(qb[i]) }
//		sum += float32(s) * (sa[k] * sb[k])
//	}
//
// VPDPBUSD multiplies unsigned by signed bytes, so the asm flips the sign
// bit of qa (qa^0x80 = qa+128 as an unsigned byte) and takes 128*sumsB[k]
// off each block's int32 sum, which makes it exact for the full int8 range.
// It reduces the sums of 16 blocks into one vector, then converts them and
// multiplies by 16 scale products at once; the float sum is reassociated
// and the last multiply-add fused. The asm assumes len(qa), len(qb) >=
// 32*len(sa) and len(sb), len(sumsB) >= len(sa), and that every sumsB[k]
// fits an int16, as the sum of 32 int8 values does.
//
//go:noescape
func dotQ8AVX512VNNI(qa, qb []int8, sa, sb []float32, sumsB []int32) float32

// vnni512MinBlocks is the length, in blocks, below which the AVX-512
// VNNI dots hand over to the AVX2 kernels: for one or two blocks their
// setup and 16-block reduction cost more than the AVX2 kernels' whole run
// (about 13.5 against 10.5 ns at n=16 and n=64 on a Xeon with both).
const vnni512MinBlocks = 3

func dotQ8VNNI512(a, b Q8) float32 {
	if len(a.Scales) < vnni512MinBlocks {
		return dotQ8AVX2(a.Q, b.Q, a.Scales, b.Scales)
	}
	return dotQ8AVX512VNNI(a.Q, b.Q, a.Scales, b.Scales, b.Sums)
}

// dotQ4AVX512VNNI returns the dot product of 4-bit weights and a Q8
// vector, as dotQ4Generic:
//
//	for k := range sw {
//		var s int32
//		for j := 0; j < 16; j++ {
//			v := qw[k*16+j]
//			s += (int32(v&15) - 8) * int32(qx[k*32+j])
//			s += (int32(v>>4) - 8) * int32(qx[k*32+j+16])
//		}
//		sum += float32(s) * (sw[k] * sx[k])
//	}
//
// VPDPBUSD multiplies the unsigned nibbles (q+8) by qx; the asm takes
// 8*sumsX[k] off each block's int32 sum. It works on four blocks per
// vector: the low nibbles of 64 bytes of qw meet the first halves of four
// blocks of qx, the high nibbles the second halves. Sums are reduced,
// scaled and added 16 blocks at a time as in dotQ8AVX512VNNI. The asm
// assumes len(qw) >= 16*len(sw), len(qx) >= 32*len(sw), len(sx),
// len(sumsX) >= len(sw), and that every sumsX[k] fits an int16.
//
//go:noescape
func dotQ4AVX512VNNI(qw []uint8, qx []int8, sw, sx []float32, sumsX []int32) float32

func dotQ4VNNI512(w Q4, x Q8) float32 {
	if len(w.Scales) < vnni512MinBlocks {
		return dotQ4AVX2(w.Q, x.Q, w.Scales, x.Scales, x.Sums)
	}
	return dotQ4AVX512VNNI(w.Q, x.Q, w.Scales, x.Scales, x.Sums)
}

// quantizeQ8AVX512 quantizes x into whole blocks of q, bit-exact with
// quantizeQ8Generic:
//
//	for k := range scales {
//		amax := max of Float32bits(x[i]) & 0x7fffffff over block k
//		if amax >= 0x7f800000 || amax < 0x0f800000: zero block, sum 0,
//			scale NaN (0x7fc00000) or 0
//		d := Float32frombits(amax) / 127; id := 1 / d
//		q[i] = int8(clamp(roundEven(x[i]*id), -127, 127)); sums[k] = sum of q
//		scales[k] = d
//	}
//
// The asm rounds with VCVTPS2DQ, which rounds half to even under Go's
// default MXCSR, and uses no fused multiply-add. It takes groups of 16
// whole blocks at once (one VDIVPS gives 16 scales, one more their
// inverses) unless a block of the group is non-finite or tiny; those groups
// and the last blocks go one by one. It loads the last partial block with
// masks and writes the padding as zeros. It assumes len(q) >=
// 32*len(scales), len(sums) >= len(scales) and that len(scales) blocks
// hold len(x) values: 32*(len(scales)-1) < len(x) <= 32*len(scales), or
// both are zero.
//
//go:noescape
func quantizeQ8AVX512(q []int8, scales []float32, sums []int32, x []float32)

// dequantizeQ8AVX512 sets dst[i] = float32(q[i]) * scales[i/32] for i <
// len(dst), bit-exact with dequantizeQ8Generic. It loads the last partial
// block with masks; it assumes len(q) >= len(dst) and len(scales) >=
// (len(dst)+31)/32.
//
//go:noescape
func dequantizeQ8AVX512(dst []float32, q []int8, scales []float32)

// quantizeQ8AVX2 is quantizeQ8AVX512 for 8-lane vectors and whole blocks
// only: the asm assumes len(x) == 32*len(scales) == len(q) and len(sums)
// >= len(scales). It packs with saturating VPACKSSDW and VPACKSSWB, exact
// on values already clamped to [-127, 127].
//
//go:noescape
func quantizeQ8AVX2(q []int8, scales []float32, sums []int32, x []float32)

func quantizeQ8AVX2Go(q []int8, scales []float32, sums []int32, x []float32) {
	nb := len(x) / BlockSize
	n := nb * BlockSize
	if nb > 0 {
		quantizeQ8AVX2(q[:n], scales[:nb], sums[:nb], x[:n])
	}
	if nb < len(scales) {
		// The last partial block, padded with zeros on the stack: zeros
		// change neither the largest |x| nor the sum, and quantize to 0.
		var xb [BlockSize]float32
		copy(xb[:], x[n:])
		quantizeQ8AVX2(q[n:n+BlockSize], scales[nb:nb+1], sums[nb:nb+1], xb[:])
	}
}

// dequantizeQ8AVX2 is dequantizeQ8AVX512 for whole blocks only: the asm
// assumes len(dst) is a multiple of 32, len(q) >= len(dst) and
// len(scales) >= len(dst)/32.
//
//go:noescape
func dequantizeQ8AVX2(dst []float32, q []int8, scales []float32)

// dequantizeQ8TailAVX2 sets dst[i] = float32(q[i]) * scale for the
// 1..31 values of a last partial block. The asm reads all 32 bytes of q (a
// zero-padded copy on the caller's stack) and writes only len(dst) values,
// with masked stores.
//
//go:noescape
func dequantizeQ8TailAVX2(dst []float32, q *[BlockSize]int8, scale float32)

func dequantizeQ8AVX2Go(dst []float32, q []int8, scales []float32) {
	n := len(dst) &^ (BlockSize - 1)
	if n > 0 {
		dequantizeQ8AVX2(dst[:n], q[:n], scales)
	}
	if n < len(dst) {
		var qb [BlockSize]int8
		copy(qb[:], q[n:len(dst)])
		dequantizeQ8TailAVX2(dst[n:], &qb, scales[n/BlockSize])
	}
}

// dotQ8AVX2 is dotQ8AVX512VNNI without VNNI: it sign-extends both
// vectors to int16 and multiplies with VPMADDWD, exact for the full int8
// range ((-128)*(-128)*2 fits an int32), so it needs no block sums. It
// reduces 8 blocks at a time and finishes the last 1..7 blocks one by one.
// The asm assumes len(qa), len(qb) >= 32*len(sa) and len(sb) >= len(sa).
//
//go:noescape
func dotQ8AVX2(qa, qb []int8, sa, sb []float32) float32

func dotQ8AVX2Go(a, b Q8) float32 {
	return dotQ8AVX2(a.Q, b.Q, a.Scales, b.Scales)
}

// dotQ4AVX2 is dotQ4AVX512VNNI for 8-lane vectors. Its unsigned operand
// is a nibble (0..15), so VPMADDUBSW cannot saturate (2*15*128 < 2^15);
// VPMADDWD with ones widens the pairs to int32, and 8*sumsX[k] comes off
// each block. The asm assumes len(qw) >= 16*len(sw), len(qx) >=
// 32*len(sw) and len(sx), len(sumsX) >= len(sw).
//
//go:noescape
func dotQ4AVX2(qw []uint8, qx []int8, sw, sx []float32, sumsX []int32) float32

func dotQ4AVX2Go(w Q4, x Q8) float32 {
	return dotQ4AVX2(w.Q, x.Q, w.Scales, x.Scales, x.Sums)
}

// dotQ8AVXVNNI is dotQ8AVX512VNNI for 8-lane vectors with the VEX-encoded
// VPDPBUSD of AVX-VNNI (Alder Lake and later, also without AVX-512): one
// block per vector, 8 blocks reduced at a time as in dotQ8AVX2, the last
// 1..7 blocks one by one. The asm assumes len(qa), len(qb) >= 32*len(sa)
// and len(sb), len(sumsB) >= len(sa).
//
//go:noescape
func dotQ8AVXVNNI(qa, qb []int8, sa, sb []float32, sumsB []int32) float32

func dotQ8VNNI256(a, b Q8) float32 {
	return dotQ8AVXVNNI(a.Q, b.Q, a.Scales, b.Scales, b.Sums)
}

// dotQ4AVXVNNI is dotQ4AVX2 with VPDPBUSD (AVX-VNNI) in place of
// VPMADDUBSW and VPMADDWD. The asm assumes what dotQ4AVX2 does.
//
//go:noescape
func dotQ4AVXVNNI(qw []uint8, qx []int8, sw, sx []float32, sumsX []int32) float32

func dotQ4VNNI256(w Q4, x Q8) float32 {
	return dotQ4AVXVNNI(w.Q, x.Q, w.Scales, x.Scales, x.Sums)
}

// dotQ8AVX512 is dotQ8AVX512VNNI for AVX-512 CPUs without VNNI: it
// sign-extends both vectors to int16 and multiplies with VPMADDWD, exact
// for the full int8 range, and needs no block sums. The asm assumes
// len(qa), len(qb) >= 32*len(sa) and len(sb) >= len(sa).
//
//go:noescape
func dotQ8AVX512(qa, qb []int8, sa, sb []float32) float32

func dotQ8AVX512Go(a, b Q8) float32 {
	return dotQ8AVX512(a.Q, b.Q, a.Scales, b.Scales)
}

// dotQ4AVX512 is dotQ4AVX512VNNI for AVX-512 CPUs without VNNI:
// VPMADDUBSW of the nibbles, which cannot saturate, and VPMADDWD with ones
// take the place of VPDPBUSD. The asm assumes what dotQ4AVX512VNNI does.
//
//go:noescape
func dotQ4AVX512(qw []uint8, qx []int8, sw, sx []float32, sumsX []int32) float32

func dotQ4AVX512Go(w Q4, x Q8) float32 {
	return dotQ4AVX512(w.Q, x.Q, w.Scales, x.Scales, x.Sums)
}
