//go:build !noasm && gc

#include "textflag.h"

// The arm64 kernels; dot_arm64.go has the contract of each. Go's assembler
// lacks many ASIMD mnemonics (vector FADD/FMUL, FADDP, SMULL, SADALP,
// FCVTNS, SCVTF, SQXTN, SDOT...): those are WORD encodings, each followed by
// the instruction in Arm syntax (destination first). The encodings were
// produced with GNU as for aarch64 and checked against objdump -d of the
// built arm64 test binary; after editing a WORD, repeat that check.
//
// Registers: R0-R17 and every V register are free in a Go assembly function;
// R18 (platform), R26-R30 are left alone.

// func dotF32NEONAsm(a, b []float32) float32
//
// Eight vector sums keep eight FMLAs in flight, enough to cover their
// latency on the A72 and the Neoverse cores.
TEXT ·dotF32NEONAsm(SB), NOSPLIT, $0-52
	MOVD	a_base+0(FP), R0
	MOVD	a_len+8(FP), R2
	MOVD	b_base+24(FP), R1
	VEOR	V16.B16, V16.B16, V16.B16
	VEOR	V17.B16, V17.B16, V17.B16
	VEOR	V18.B16, V18.B16, V18.B16
	VEOR	V19.B16, V19.B16, V19.B16
	VEOR	V20.B16, V20.B16, V20.B16
	VEOR	V21.B16, V21.B16, V21.B16
	VEOR	V22.B16, V22.B16, V22.B16
	VEOR	V23.B16, V23.B16, V23.B16
	CMP	$32, R2
	BLT	dot4

dot32:
	VLD1.P	64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P	64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P	64(R0), [V8.S4, V9.S4, V10.S4, V11.S4]
	VLD1.P	64(R1), [V12.S4, V13.S4, V14.S4, V15.S4]
	VFMLA	V0.S4, V4.S4, V16.S4
	VFMLA	V1.S4, V5.S4, V17.S4
	VFMLA	V2.S4, V6.S4, V18.S4
	VFMLA	V3.S4, V7.S4, V19.S4
	VFMLA	V8.S4, V12.S4, V20.S4
	VFMLA	V9.S4, V13.S4, V21.S4
	VFMLA	V10.S4, V14.S4, V22.S4
	VFMLA	V11.S4, V15.S4, V23.S4
	SUB	$32, R2
	CMP	$32, R2
	BGE	dot32

dot4:
	CBZ	R2, dotsum

dot4loop:
	VLD1.P	16(R0), [V0.S4]
	VLD1.P	16(R1), [V4.S4]
	VFMLA	V0.S4, V4.S4, V16.S4
	SUBS	$4, R2
	BNE	dot4loop

dotsum:
	WORD	$0x4e34d610	// fadd v16.4s, v16.4s, v20.4s
	WORD	$0x4e35d631	// fadd v17.4s, v17.4s, v21.4s
	WORD	$0x4e36d652	// fadd v18.4s, v18.4s, v22.4s
	WORD	$0x4e37d673	// fadd v19.4s, v19.4s, v23.4s
	WORD	$0x4e31d610	// fadd v16.4s, v16.4s, v17.4s
	WORD	$0x4e33d652	// fadd v18.4s, v18.4s, v19.4s
	WORD	$0x4e32d610	// fadd v16.4s, v16.4s, v18.4s
	WORD	$0x6e30d610	// faddp v16.4s, v16.4s, v16.4s
	WORD	$0x7e30da10	// faddp s16, v16.2s
	FMOVS	F16, ret+48(FP)
	RET

// func axpyF32NEONAsm(alpha float32, x, y []float32)
TEXT ·axpyF32NEONAsm(SB), NOSPLIT, $0-56
	FMOVS	alpha+0(FP), F31
	MOVD	x_base+8(FP), R0
	MOVD	x_len+16(FP), R2
	MOVD	y_base+32(FP), R1
	VDUP	V31.S[0], V31.S4
	CMP	$16, R2
	BLT	axpy4

axpy16:
	VLD1.P	64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1	(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	VFMLA	V31.S4, V0.S4, V4.S4
	VFMLA	V31.S4, V1.S4, V5.S4
	VFMLA	V31.S4, V2.S4, V6.S4
	VFMLA	V31.S4, V3.S4, V7.S4
	VST1.P	[V4.S4, V5.S4, V6.S4, V7.S4], 64(R1)
	SUB	$16, R2
	CMP	$16, R2
	BGE	axpy16

axpy4:
	CBZ	R2, axpydone

axpy4loop:
	VLD1.P	16(R0), [V0.S4]
	VLD1	(R1), [V4.S4]
	VFMLA	V31.S4, V0.S4, V4.S4
	VST1.P	[V4.S4], 16(R1)
	SUBS	$4, R2
	BNE	axpy4loop

axpydone:
	RET

// func scaleAddF32NEONAsm(a float32, x []float32, b float32, y []float32)
TEXT ·scaleAddF32NEONAsm(SB), NOSPLIT, $0-64
	FMOVS	a+0(FP), F30
	MOVD	x_base+8(FP), R0
	MOVD	x_len+16(FP), R2
	FMOVS	b+32(FP), F31
	MOVD	y_base+40(FP), R1
	VDUP	V30.S[0], V30.S4
	VDUP	V31.S[0], V31.S4
	CMP	$16, R2
	BLT	sa4

sa16:
	VLD1.P	64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1	(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	WORD	$0x6e3fdc84	// fmul v4.4s, v4.4s, v31.4s
	WORD	$0x6e3fdca5	// fmul v5.4s, v5.4s, v31.4s
	WORD	$0x6e3fdcc6	// fmul v6.4s, v6.4s, v31.4s
	WORD	$0x6e3fdce7	// fmul v7.4s, v7.4s, v31.4s
	VFMLA	V30.S4, V0.S4, V4.S4
	VFMLA	V30.S4, V1.S4, V5.S4
	VFMLA	V30.S4, V2.S4, V6.S4
	VFMLA	V30.S4, V3.S4, V7.S4
	VST1.P	[V4.S4, V5.S4, V6.S4, V7.S4], 64(R1)
	SUB	$16, R2
	CMP	$16, R2
	BGE	sa16

sa4:
	CBZ	R2, sadone

sa4loop:
	VLD1.P	16(R0), [V0.S4]
	VLD1	(R1), [V4.S4]
	WORD	$0x6e3fdc84	// fmul v4.4s, v4.4s, v31.4s
	VFMLA	V30.S4, V0.S4, V4.S4
	VST1.P	[V4.S4], 16(R1)
	SUBS	$4, R2
	BNE	sa4loop

sadone:
	RET

// func gemvF32NEONAsm(dst, m, x []float32)
//
// Four rows at a time share each load of x; two vector sums per row keep
// eight FMLAs in flight.
TEXT ·gemvF32NEONAsm(SB), NOSPLIT, $0-72
	MOVD	dst_base+0(FP), R0
	MOVD	dst_len+8(FP), R1
	MOVD	m_base+24(FP), R2
	MOVD	x_base+48(FP), R3
	MOVD	x_len+56(FP), R4
	LSL	$2, R4, R5 // row stride in bytes
	AND	$~3, R4, R6 // columns done here

gemvrows:
	CBZ	R1, gemvdone
	MOVD	R2, R7
	ADD	R5, R7, R8
	ADD	R5, R8, R9
	ADD	R5, R9, R10
	MOVD	R3, R11
	MOVD	R6, R12
	VEOR	V16.B16, V16.B16, V16.B16
	VEOR	V17.B16, V17.B16, V17.B16
	VEOR	V18.B16, V18.B16, V18.B16
	VEOR	V19.B16, V19.B16, V19.B16
	VEOR	V20.B16, V20.B16, V20.B16
	VEOR	V21.B16, V21.B16, V21.B16
	VEOR	V22.B16, V22.B16, V22.B16
	VEOR	V23.B16, V23.B16, V23.B16
	CMP	$8, R12
	BLT	gemvcols4

gemvcols8:
	VLD1.P	32(R11), [V0.S4, V1.S4]
	VLD1.P	32(R7), [V2.S4, V3.S4]
	VLD1.P	32(R8), [V4.S4, V5.S4]
	VLD1.P	32(R9), [V6.S4, V7.S4]
	VLD1.P	32(R10), [V8.S4, V9.S4]
	VFMLA	V0.S4, V2.S4, V16.S4
	VFMLA	V0.S4, V4.S4, V17.S4
	VFMLA	V0.S4, V6.S4, V18.S4
	VFMLA	V0.S4, V8.S4, V19.S4
	VFMLA	V1.S4, V3.S4, V20.S4
	VFMLA	V1.S4, V5.S4, V21.S4
	VFMLA	V1.S4, V7.S4, V22.S4
	VFMLA	V1.S4, V9.S4, V23.S4
	SUB	$8, R12
	CMP	$8, R12
	BGE	gemvcols8

gemvcols4:
	CBZ	R12, gemvstore
	VLD1.P	16(R11), [V0.S4]
	VLD1.P	16(R7), [V2.S4]
	VLD1.P	16(R8), [V4.S4]
	VLD1.P	16(R9), [V6.S4]
	VLD1.P	16(R10), [V8.S4]
	VFMLA	V0.S4, V2.S4, V16.S4
	VFMLA	V0.S4, V4.S4, V17.S4
	VFMLA	V0.S4, V6.S4, V18.S4
	VFMLA	V0.S4, V8.S4, V19.S4

gemvstore:
	// Add each row's two sums, then pairwise adds turn the four row sums
	// into one vector of four results.
	WORD	$0x4e34d610	// fadd v16.4s, v16.4s, v20.4s
	WORD	$0x4e35d631	// fadd v17.4s, v17.4s, v21.4s
	WORD	$0x4e36d652	// fadd v18.4s, v18.4s, v22.4s
	WORD	$0x4e37d673	// fadd v19.4s, v19.4s, v23.4s
	WORD	$0x6e31d610	// faddp v16.4s, v16.4s, v17.4s
	WORD	$0x6e33d652	// faddp v18.4s, v18.4s, v19.4s
	WORD	$0x6e32d610	// faddp v16.4s, v16.4s, v18.4s
	VST1.P	[V16.S4], 16(R0)
	ADD	R5<<2, R2, R2
	SUB	$4, R1
	B	gemvrows

gemvdone:
	RET

// func quantizeQ8NEONAsm(q []int8, scales []float32, sums []int32, x []float32)
TEXT ·quantizeQ8NEONAsm(SB), NOSPLIT, $0-96
	MOVD	q_base+0(FP), R0
	MOVD	scales_base+24(FP), R1
	MOVD	scales_len+32(FP), R4
	MOVD	sums_base+48(FP), R2
	MOVD	x_base+72(FP), R3
	MOVW	$0x7fffffff, R5
	VDUP	R5, V31.S4 // |x| mask
	MOVW	$127, R5
	VDUP	R5, V30.H8
	MOVW	$-127, R5
	VDUP	R5, V29.H8
	MOVW	$0x42fe0000, R5 // 127.0
	FMOVS	R5, F28
	FMOVS	$1.0, F27
	MOVW	$0x7f800000, R6 // nonFiniteBits
	MOVW	$0x0f800000, R7 // tinyBits
	MOVW	$0x7fc00000, R8 // the NaN scale of a non-finite block
	VEOR	V26.B16, V26.B16, V26.B16
	VEOR	V25.B16, V25.B16, V25.B16

qblock:
	CBZ	R4, qdone
	VLD1.P	64(R3), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P	64(R3), [V4.S4, V5.S4, V6.S4, V7.S4]
	// amax on the bit patterns of |x|, as unsigned integers.
	VAND	V31.B16, V0.B16, V16.B16
	VAND	V31.B16, V1.B16, V17.B16
	VAND	V31.B16, V2.B16, V18.B16
	VAND	V31.B16, V3.B16, V19.B16
	VAND	V31.B16, V4.B16, V20.B16
	VAND	V31.B16, V5.B16, V21.B16
	VAND	V31.B16, V6.B16, V22.B16
	VAND	V31.B16, V7.B16, V23.B16
	VUMAX	V17.S4, V16.S4, V16.S4
	VUMAX	V19.S4, V18.S4, V18.S4
	VUMAX	V21.S4, V20.S4, V20.S4
	VUMAX	V23.S4, V22.S4, V22.S4
	VUMAX	V18.S4, V16.S4, V16.S4
	VUMAX	V22.S4, V20.S4, V20.S4
	VUMAX	V20.S4, V16.S4, V16.S4
	WORD	$0x6eb0aa10	// umaxv s16, v16.4s
	FMOVS	F16, R9
	CMPW	R6, R9
	BHS	qnonfinite
	CMPW	R7, R9
	BLO	qtiny

	FDIVS	F28, F16, F17 // d = amax / 127
	FDIVS	F17, F27, F18 // id = 1 / d
	VDUP	V18.S[0], V18.S4
	WORD	$0x6e32dc00	// fmul v0.4s, v0.4s, v18.4s
	WORD	$0x6e32dc21	// fmul v1.4s, v1.4s, v18.4s
	WORD	$0x6e32dc42	// fmul v2.4s, v2.4s, v18.4s
	WORD	$0x6e32dc63	// fmul v3.4s, v3.4s, v18.4s
	WORD	$0x6e32dc84	// fmul v4.4s, v4.4s, v18.4s
	WORD	$0x6e32dca5	// fmul v5.4s, v5.4s, v18.4s
	WORD	$0x6e32dcc6	// fmul v6.4s, v6.4s, v18.4s
	WORD	$0x6e32dce7	// fmul v7.4s, v7.4s, v18.4s
	// Round half to even, then narrow to int16 saturating, so the clamp
	// holds for any int32.
	WORD	$0x4e21a800	// fcvtns v0.4s, v0.4s
	WORD	$0x4e21a821	// fcvtns v1.4s, v1.4s
	WORD	$0x4e21a842	// fcvtns v2.4s, v2.4s
	WORD	$0x4e21a863	// fcvtns v3.4s, v3.4s
	WORD	$0x4e21a884	// fcvtns v4.4s, v4.4s
	WORD	$0x4e21a8a5	// fcvtns v5.4s, v5.4s
	WORD	$0x4e21a8c6	// fcvtns v6.4s, v6.4s
	WORD	$0x4e21a8e7	// fcvtns v7.4s, v7.4s
	WORD	$0x0e614800	// sqxtn v0.4h, v0.4s
	WORD	$0x4e614820	// sqxtn2 v0.8h, v1.4s
	WORD	$0x0e614841	// sqxtn v1.4h, v2.4s
	WORD	$0x4e614861	// sqxtn2 v1.8h, v3.4s
	WORD	$0x0e614882	// sqxtn v2.4h, v4.4s
	WORD	$0x4e6148a2	// sqxtn2 v2.8h, v5.4s
	WORD	$0x0e6148c3	// sqxtn v3.4h, v6.4s
	WORD	$0x4e6148e3	// sqxtn2 v3.8h, v7.4s
	WORD	$0x4e7e6c00	// smin v0.8h, v0.8h, v30.8h
	WORD	$0x4e7e6c21	// smin v1.8h, v1.8h, v30.8h
	WORD	$0x4e7e6c42	// smin v2.8h, v2.8h, v30.8h
	WORD	$0x4e7e6c63	// smin v3.8h, v3.8h, v30.8h
	WORD	$0x4e7d6400	// smax v0.8h, v0.8h, v29.8h
	WORD	$0x4e7d6421	// smax v1.8h, v1.8h, v29.8h
	WORD	$0x4e7d6442	// smax v2.8h, v2.8h, v29.8h
	WORD	$0x4e7d6463	// smax v3.8h, v3.8h, v29.8h
	// The block sum: four values per int16 lane, then across lanes.
	VADD	V1.H8, V0.H8, V20.H8
	VADD	V3.H8, V2.H8, V21.H8
	VADD	V21.H8, V20.H8, V20.H8
	WORD	$0x4e703a94	// saddlv s20, v20.8h
	WORD	$0x0e212816	// xtn v22.8b, v0.8h
	WORD	$0x4e212836	// xtn2 v22.16b, v1.8h
	WORD	$0x0e212857	// xtn v23.8b, v2.8h
	WORD	$0x4e212877	// xtn2 v23.16b, v3.8h
	VST1.P	[V22.B16, V23.B16], 32(R0)
	FMOVS	F20, R10
	MOVW.P	R10, 4(R2)
	FMOVS.P	F17, 4(R1)
	SUB	$1, R4
	B	qblock

qnonfinite:
	VST1.P	[V25.B16, V26.B16], 32(R0)
	MOVW.P	ZR, 4(R2)
	MOVW.P	R8, 4(R1)
	SUB	$1, R4
	B	qblock

qtiny:
	VST1.P	[V25.B16, V26.B16], 32(R0)
	MOVW.P	ZR, 4(R2)
	MOVW.P	ZR, 4(R1)
	SUB	$1, R4
	B	qblock

qdone:
	RET

// func dequantizeQ8NEONAsm(dst []float32, q []int8, scales []float32)
TEXT ·dequantizeQ8NEONAsm(SB), NOSPLIT, $0-72
	MOVD	dst_base+0(FP), R0
	MOVD	q_base+24(FP), R1
	MOVD	scales_base+48(FP), R2
	MOVD	scales_len+56(FP), R4

dqblock:
	CBZ	R4, dqdone
	VLD1.P	32(R1), [V0.B16, V1.B16]
	VLD1R.P	4(R2), [V24.S4]
	WORD	$0x0f08a402	// sxtl v2.8h, v0.8b
	WORD	$0x4f08a403	// sxtl2 v3.8h, v0.16b
	WORD	$0x0f08a424	// sxtl v4.8h, v1.8b
	WORD	$0x4f08a425	// sxtl2 v5.8h, v1.16b
	WORD	$0x0f10a450	// sxtl v16.4s, v2.4h
	WORD	$0x4f10a451	// sxtl2 v17.4s, v2.8h
	WORD	$0x0f10a472	// sxtl v18.4s, v3.4h
	WORD	$0x4f10a473	// sxtl2 v19.4s, v3.8h
	WORD	$0x0f10a494	// sxtl v20.4s, v4.4h
	WORD	$0x4f10a495	// sxtl2 v21.4s, v4.8h
	WORD	$0x0f10a4b6	// sxtl v22.4s, v5.4h
	WORD	$0x4f10a4b7	// sxtl2 v23.4s, v5.8h
	WORD	$0x4e21da10	// scvtf v16.4s, v16.4s
	WORD	$0x4e21da31	// scvtf v17.4s, v17.4s
	WORD	$0x4e21da52	// scvtf v18.4s, v18.4s
	WORD	$0x4e21da73	// scvtf v19.4s, v19.4s
	WORD	$0x4e21da94	// scvtf v20.4s, v20.4s
	WORD	$0x4e21dab5	// scvtf v21.4s, v21.4s
	WORD	$0x4e21dad6	// scvtf v22.4s, v22.4s
	WORD	$0x4e21daf7	// scvtf v23.4s, v23.4s
	WORD	$0x6e38de10	// fmul v16.4s, v16.4s, v24.4s
	WORD	$0x6e38de31	// fmul v17.4s, v17.4s, v24.4s
	WORD	$0x6e38de52	// fmul v18.4s, v18.4s, v24.4s
	WORD	$0x6e38de73	// fmul v19.4s, v19.4s, v24.4s
	WORD	$0x6e38de94	// fmul v20.4s, v20.4s, v24.4s
	WORD	$0x6e38deb5	// fmul v21.4s, v21.4s, v24.4s
	WORD	$0x6e38ded6	// fmul v22.4s, v22.4s, v24.4s
	WORD	$0x6e38def7	// fmul v23.4s, v23.4s, v24.4s
	VST1.P	[V16.S4, V17.S4, V18.S4, V19.S4], 64(R0)
	VST1.P	[V20.S4, V21.S4, V22.S4, V23.S4], 64(R0)
	SUB	$1, R4
	B	dqblock

dqdone:
	RET

// blockSum adds the block's int32 lanes in V16, converts the sum to float32
// and adds it, times as[k]*bs[k] (R2, R3 walk the scales), into F20 with
// one fused multiply-add.
#define blockSum \
	VADDV	V16.S4, V16 \
	WORD	$0x5e21da10	/* scvtf s16, s16 */ \
	FMOVS.P	4(R2), F17 \
	FMOVS.P	4(R3), F18 \
	FMULS	F18, F17, F17 \
	FMADDS	F17, F20, F16, F20

// func dotQ8NEONAsm(a, b []int8, as, bs []float32) float32
TEXT ·dotQ8NEONAsm(SB), NOSPLIT, $0-100
	MOVD	a_base+0(FP), R0
	MOVD	b_base+24(FP), R1
	MOVD	as_base+48(FP), R2
	MOVD	as_len+56(FP), R4
	MOVD	bs_base+72(FP), R3
	FMOVS	ZR, F20

q8block:
	CBZ	R4, q8done
	VLD1.P	32(R0), [V0.B16, V1.B16]
	VLD1.P	32(R1), [V2.B16, V3.B16]
	WORD	$0x0e22c004	// smull v4.8h, v0.8b, v2.8b
	WORD	$0x4e22c005	// smull2 v5.8h, v0.16b, v2.16b
	WORD	$0x0e23c026	// smull v6.8h, v1.8b, v3.8b
	WORD	$0x4e23c027	// smull2 v7.8h, v1.16b, v3.16b
	WORD	$0x4e602890	// saddlp v16.4s, v4.8h
	WORD	$0x4e6068b0	// sadalp v16.4s, v5.8h
	WORD	$0x4e6068d0	// sadalp v16.4s, v6.8h
	WORD	$0x4e6068f0	// sadalp v16.4s, v7.8h
	blockSum
	SUB	$1, R4
	B	q8block

q8done:
	FMOVS	F20, ret+96(FP)
	RET

// func dotQ8SDOTAsm(a, b []int8, as, bs []float32) float32
TEXT ·dotQ8SDOTAsm(SB), NOSPLIT, $0-100
	MOVD	a_base+0(FP), R0
	MOVD	b_base+24(FP), R1
	MOVD	as_base+48(FP), R2
	MOVD	as_len+56(FP), R4
	MOVD	bs_base+72(FP), R3
	FMOVS	ZR, F20

sdq8block:
	CBZ	R4, sdq8done
	VLD1.P	32(R0), [V0.B16, V1.B16]
	VLD1.P	32(R1), [V2.B16, V3.B16]
	VEOR	V16.B16, V16.B16, V16.B16
	WORD	$0x4e829410	// sdot v16.4s, v0.16b, v2.16b
	WORD	$0x4e839430	// sdot v16.4s, v1.16b, v3.16b
	blockSum
	SUB	$1, R4
	B	sdq8block

sdq8done:
	FMOVS	F20, ret+96(FP)
	RET

// decodeQ4 splits the 16 bytes in V0 into V4 (low nibbles, elements
// 0..15) and V5 (high nibbles, elements 16..31), each minus 8.
#define decodeQ4 \
	VAND	V30.B16, V0.B16, V4.B16 \
	VUSHR	$4, V0.B16, V5.B16 \
	VSUB	V29.B16, V4.B16, V4.B16 \
	VSUB	V29.B16, V5.B16, V5.B16

// func dotQ4NEONAsm(w []uint8, x []int8, ws, xs []float32) float32
TEXT ·dotQ4NEONAsm(SB), NOSPLIT, $0-100
	MOVD	w_base+0(FP), R0
	MOVD	x_base+24(FP), R1
	MOVD	ws_base+48(FP), R2
	MOVD	ws_len+56(FP), R4
	MOVD	xs_base+72(FP), R3
	FMOVS	ZR, F20
	VMOVI	$15, V30.B16
	VMOVI	$8, V29.B16

q4block:
	CBZ	R4, q4done
	VLD1.P	16(R0), [V0.B16]
	VLD1.P	32(R1), [V2.B16, V3.B16]
	decodeQ4
	WORD	$0x0e22c086	// smull v6.8h, v4.8b, v2.8b
	WORD	$0x0e2380a6	// smlal v6.8h, v5.8b, v3.8b
	WORD	$0x4e22c087	// smull2 v7.8h, v4.16b, v2.16b
	WORD	$0x4e2380a7	// smlal2 v7.8h, v5.16b, v3.16b
	WORD	$0x4e6028d0	// saddlp v16.4s, v6.8h
	WORD	$0x4e6068f0	// sadalp v16.4s, v7.8h
	blockSum
	SUB	$1, R4
	B	q4block

q4done:
	FMOVS	F20, ret+96(FP)
	RET

// func dotQ4SDOTAsm(w []uint8, x []int8, ws, xs []float32) float32
TEXT ·dotQ4SDOTAsm(SB), NOSPLIT, $0-100
	MOVD	w_base+0(FP), R0
	MOVD	x_base+24(FP), R1
	MOVD	ws_base+48(FP), R2
	MOVD	ws_len+56(FP), R4
	MOVD	xs_base+72(FP), R3
	FMOVS	ZR, F20
	VMOVI	$15, V30.B16
	VMOVI	$8, V29.B16

sdq4block:
	CBZ	R4, sdq4done
	VLD1.P	16(R0), [V0.B16]
	VLD1.P	32(R1), [V2.B16, V3.B16]
	decodeQ4
	VEOR	V16.B16, V16.B16, V16.B16
	WORD	$0x4e829490	// sdot v16.4s, v4.16b, v2.16b
	WORD	$0x4e8394b0	// sdot v16.4s, v5.16b, v3.16b
	blockSum
	SUB	$1, R4
	B	sdq4block

sdq4done:
	FMOVS	F20, ret+96(FP)
	RET
