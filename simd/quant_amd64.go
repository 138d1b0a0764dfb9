//go:build !noasm && gc

package simd

// Quantized kernels for amd64. Q8 and Q4 vectors hold whole blocks of 32
// values, so the asm never sees a partial block: it finishes the last
// partial group of blocks with masked loads of the scales and sums and with
// 32-byte loads of the values, and never reads past a slice's length.

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
// 32*len(sa) and len(sb), len(sumsB) >= len(sa).
//
//go:noescape
func dotQ8AVX512VNNI(qa, qb []int8, sa, sb []float32, sumsB []int32) float32

func dotQ8VNNI512(a, b Q8) float32 {
	return dotQ8AVX512VNNI(a.Q, b.Q, a.Scales, b.Scales, b.Sums)
}
