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
// assumes len(qw) >= 16*len(sw), len(qx) >= 32*len(sw) and len(sx),
// len(sumsX) >= len(sw).
//
//go:noescape
func dotQ4AVX512VNNI(qw []uint8, qx []int8, sw, sx []float32, sumsX []int32) float32

func dotQ4VNNI512(w Q4, x Q8) float32 {
	return dotQ4AVX512VNNI(w.Q, x.Q, w.Scales, x.Scales, x.Sums)
}
