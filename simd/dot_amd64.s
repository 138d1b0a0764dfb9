//go:build !noasm && gc

#include "textflag.h"

// Float kernels. Register use: SI, DI the inputs, AX the element index,
// CX the length, DX a loop bound. The AVX-512 kernels build a mask of the
// remaining (< 16) lanes in K1 and finish with masked loads and stores.

// func dotF32AVX512(a, b []float32) float32
TEXT ·dotF32AVX512(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-64, DX
	JZ   dot512_16

dot512_64:
	VMOVUPS     (SI)(AX*4), Z4
	VMOVUPS     64(SI)(AX*4), Z5
	VMOVUPS     128(SI)(AX*4), Z6
	VMOVUPS     192(SI)(AX*4), Z7
	VFMADD231PS (DI)(AX*4), Z4, Z0
	VFMADD231PS 64(DI)(AX*4), Z5, Z1
	VFMADD231PS 128(DI)(AX*4), Z6, Z2
	VFMADD231PS 192(DI)(AX*4), Z7, Z3
	ADDQ        $64, AX
	CMPQ        AX, DX
	JB          dot512_64

dot512_16:
	MOVQ CX, DX
	ANDQ $-16, DX
	CMPQ AX, DX
	JAE  dot512_tail

dot512_16loop:
	VMOVUPS     (SI)(AX*4), Z4
	VFMADD231PS (DI)(AX*4), Z4, Z0
	ADDQ        $16, AX
	CMPQ        AX, DX
	JB          dot512_16loop

dot512_tail:
	SUBQ  AX, CX
	JZ    dot512_reduce
	MOVL  $1, DX
	SHLL  CX, DX
	DECL  DX
	KMOVW DX, K1
	VMOVUPS.Z (SI)(AX*4), K1, Z4
	VMOVUPS.Z (DI)(AX*4), K1, Z5
	VFMADD231PS Z5, Z4, Z1

dot512_reduce:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+48(FP)
	RET

// func dotF32AVX2(a, b []float32) float32
//
// Eight accumulators keep two loads a cycle busy despite the FMA latency.
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-64, DX
	JZ   dot2_8

dot2_64:
	VMOVUPS     (SI)(AX*4), Y8
	VMOVUPS     32(SI)(AX*4), Y9
	VMOVUPS     64(SI)(AX*4), Y10
	VMOVUPS     96(SI)(AX*4), Y11
	VMOVUPS     128(SI)(AX*4), Y12
	VMOVUPS     160(SI)(AX*4), Y13
	VMOVUPS     192(SI)(AX*4), Y14
	VMOVUPS     224(SI)(AX*4), Y15
	VFMADD231PS (DI)(AX*4), Y8, Y0
	VFMADD231PS 32(DI)(AX*4), Y9, Y1
	VFMADD231PS 64(DI)(AX*4), Y10, Y2
	VFMADD231PS 96(DI)(AX*4), Y11, Y3
	VFMADD231PS 128(DI)(AX*4), Y12, Y4
	VFMADD231PS 160(DI)(AX*4), Y13, Y5
	VFMADD231PS 192(DI)(AX*4), Y14, Y6
	VFMADD231PS 224(DI)(AX*4), Y15, Y7
	ADDQ        $64, AX
	CMPQ        AX, DX
	JB          dot2_64

dot2_8:
	CMPQ AX, CX
	JAE  dot2_reduce

dot2_8loop:
	VMOVUPS     (SI)(AX*4), Y8
	VFMADD231PS (DI)(AX*4), Y8, Y0
	ADDQ        $8, AX
	CMPQ        AX, CX
	JB          dot2_8loop

dot2_reduce:
	VADDPS       Y4, Y0, Y0
	VADDPS       Y5, Y1, Y1
	VADDPS       Y6, Y2, Y2
	VADDPS       Y7, Y3, Y3
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+48(FP)
	RET

// func axpyF32AVX512(alpha float32, x, y []float32)
TEXT ·axpyF32AVX512(SB), NOSPLIT, $0-56
	VBROADCASTSS alpha+0(FP), Z0
	MOVQ x_base+8(FP), SI
	MOVQ x_len+16(FP), CX
	MOVQ y_base+32(FP), DI
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-64, DX
	JZ   axpy512_16

axpy512_64:
	VMOVUPS     (SI)(AX*4), Z4
	VMOVUPS     64(SI)(AX*4), Z5
	VMOVUPS     128(SI)(AX*4), Z6
	VMOVUPS     192(SI)(AX*4), Z7
	VFMADD213PS (DI)(AX*4), Z0, Z4
	VFMADD213PS 64(DI)(AX*4), Z0, Z5
	VFMADD213PS 128(DI)(AX*4), Z0, Z6
	VFMADD213PS 192(DI)(AX*4), Z0, Z7
	VMOVUPS     Z4, (DI)(AX*4)
	VMOVUPS     Z5, 64(DI)(AX*4)
	VMOVUPS     Z6, 128(DI)(AX*4)
	VMOVUPS     Z7, 192(DI)(AX*4)
	ADDQ        $64, AX
	CMPQ        AX, DX
	JB          axpy512_64

axpy512_16:
	MOVQ CX, DX
	ANDQ $-16, DX
	CMPQ AX, DX
	JAE  axpy512_tail

axpy512_16loop:
	VMOVUPS     (SI)(AX*4), Z4
	VFMADD213PS (DI)(AX*4), Z0, Z4
	VMOVUPS     Z4, (DI)(AX*4)
	ADDQ        $16, AX
	CMPQ        AX, DX
	JB          axpy512_16loop

axpy512_tail:
	SUBQ  AX, CX
	JZ    axpy512_done
	MOVL  $1, DX
	SHLL  CX, DX
	DECL  DX
	KMOVW DX, K1
	VMOVUPS.Z   (SI)(AX*4), K1, Z4
	VMOVUPS.Z   (DI)(AX*4), K1, Z5
	VFMADD231PS Z4, Z0, Z5
	VMOVUPS     Z5, K1, (DI)(AX*4)

axpy512_done:
	VZEROUPPER
	RET

// func axpyF32AVX2(alpha float32, x, y []float32)
TEXT ·axpyF32AVX2(SB), NOSPLIT, $0-56
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ x_base+8(FP), SI
	MOVQ x_len+16(FP), CX
	MOVQ y_base+32(FP), DI
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-32, DX
	JZ   axpy2_8

axpy2_32:
	VMOVUPS     (SI)(AX*4), Y4
	VMOVUPS     32(SI)(AX*4), Y5
	VMOVUPS     64(SI)(AX*4), Y6
	VMOVUPS     96(SI)(AX*4), Y7
	VFMADD213PS (DI)(AX*4), Y0, Y4
	VFMADD213PS 32(DI)(AX*4), Y0, Y5
	VFMADD213PS 64(DI)(AX*4), Y0, Y6
	VFMADD213PS 96(DI)(AX*4), Y0, Y7
	VMOVUPS     Y4, (DI)(AX*4)
	VMOVUPS     Y5, 32(DI)(AX*4)
	VMOVUPS     Y6, 64(DI)(AX*4)
	VMOVUPS     Y7, 96(DI)(AX*4)
	ADDQ        $32, AX
	CMPQ        AX, DX
	JB          axpy2_32

axpy2_8:
	CMPQ AX, CX
	JAE  axpy2_done

axpy2_8loop:
	VMOVUPS     (SI)(AX*4), Y4
	VFMADD213PS (DI)(AX*4), Y0, Y4
	VMOVUPS     Y4, (DI)(AX*4)
	ADDQ        $8, AX
	CMPQ        AX, CX
	JB          axpy2_8loop

axpy2_done:
	VZEROUPPER
	RET

// func scaleAddF32AVX512(a float32, x []float32, b float32, y []float32)
TEXT ·scaleAddF32AVX512(SB), NOSPLIT, $0-64
	VBROADCASTSS a+0(FP), Z0
	VBROADCASTSS b+32(FP), Z1
	MOVQ x_base+8(FP), SI
	MOVQ x_len+16(FP), CX
	MOVQ y_base+40(FP), DI
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-64, DX
	JZ   sa512_16

sa512_64:
	VMULPS      (DI)(AX*4), Z1, Z4
	VMULPS      64(DI)(AX*4), Z1, Z5
	VMULPS      128(DI)(AX*4), Z1, Z6
	VMULPS      192(DI)(AX*4), Z1, Z7
	VFMADD231PS (SI)(AX*4), Z0, Z4
	VFMADD231PS 64(SI)(AX*4), Z0, Z5
	VFMADD231PS 128(SI)(AX*4), Z0, Z6
	VFMADD231PS 192(SI)(AX*4), Z0, Z7
	VMOVUPS     Z4, (DI)(AX*4)
	VMOVUPS     Z5, 64(DI)(AX*4)
	VMOVUPS     Z6, 128(DI)(AX*4)
	VMOVUPS     Z7, 192(DI)(AX*4)
	ADDQ        $64, AX
	CMPQ        AX, DX
	JB          sa512_64

sa512_16:
	MOVQ CX, DX
	ANDQ $-16, DX
	CMPQ AX, DX
	JAE  sa512_tail

sa512_16loop:
	VMULPS      (DI)(AX*4), Z1, Z4
	VFMADD231PS (SI)(AX*4), Z0, Z4
	VMOVUPS     Z4, (DI)(AX*4)
	ADDQ        $16, AX
	CMPQ        AX, DX
	JB          sa512_16loop

sa512_tail:
	SUBQ  AX, CX
	JZ    sa512_done
	MOVL  $1, DX
	SHLL  CX, DX
	DECL  DX
	KMOVW DX, K1
	VMOVUPS.Z   (SI)(AX*4), K1, Z4
	VMOVUPS.Z   (DI)(AX*4), K1, Z5
	VMULPS      Z5, Z1, Z5
	VFMADD231PS Z4, Z0, Z5
	VMOVUPS     Z5, K1, (DI)(AX*4)

sa512_done:
	VZEROUPPER
	RET

// func scaleAddF32AVX2(a float32, x []float32, b float32, y []float32)
TEXT ·scaleAddF32AVX2(SB), NOSPLIT, $0-64
	VBROADCASTSS a+0(FP), Y0
	VBROADCASTSS b+32(FP), Y1
	MOVQ x_base+8(FP), SI
	MOVQ x_len+16(FP), CX
	MOVQ y_base+40(FP), DI
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-32, DX
	JZ   sa2_8

sa2_32:
	VMULPS      (DI)(AX*4), Y1, Y4
	VMULPS      32(DI)(AX*4), Y1, Y5
	VMULPS      64(DI)(AX*4), Y1, Y6
	VMULPS      96(DI)(AX*4), Y1, Y7
	VFMADD231PS (SI)(AX*4), Y0, Y4
	VFMADD231PS 32(SI)(AX*4), Y0, Y5
	VFMADD231PS 64(SI)(AX*4), Y0, Y6
	VFMADD231PS 96(SI)(AX*4), Y0, Y7
	VMOVUPS     Y4, (DI)(AX*4)
	VMOVUPS     Y5, 32(DI)(AX*4)
	VMOVUPS     Y6, 64(DI)(AX*4)
	VMOVUPS     Y7, 96(DI)(AX*4)
	ADDQ        $32, AX
	CMPQ        AX, DX
	JB          sa2_32

sa2_8:
	CMPQ AX, CX
	JAE  sa2_done

sa2_8loop:
	VMULPS      (DI)(AX*4), Y1, Y4
	VFMADD231PS (SI)(AX*4), Y0, Y4
	VMOVUPS     Y4, (DI)(AX*4)
	ADDQ        $8, AX
	CMPQ        AX, CX
	JB          sa2_8loop

sa2_done:
	VZEROUPPER
	RET

// func gemvF32AVX512(dst, m, x []float32)
//
// R8 walks the rows of m, R9 is x, DI walks dst, BX counts rows left,
// CX is n and R10..R13 point at the four rows of a group. Each row of a
// group has two accumulators: Z0/Z4, Z1/Z5, Z2/Z6, Z3/Z7.
TEXT ·gemvF32AVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), BX
	MOVQ m_base+24(FP), R8
	MOVQ x_base+48(FP), R9
	MOVQ x_len+56(FP), SI

	// K1 masks the last n%16 columns; R14 is n rounded down to 16, R15
	// to 32, DX the row stride in bytes.
	MOVQ  SI, CX
	ANDQ  $15, CX
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1
	MOVQ  SI, CX
	MOVQ  CX, R14
	ANDQ  $-16, R14
	MOVQ  CX, R15
	ANDQ  $-32, R15
	MOVQ  CX, DX
	SHLQ  $2, DX

gemv512_rows4:
	CMPQ BX, $4
	JB   gemv512_rows1
	MOVQ R8, R10
	LEAQ (R8)(DX*1), R11
	LEAQ (R8)(DX*2), R12
	LEAQ (R11)(DX*2), R13
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	XORQ   AX, AX
	CMPQ   AX, R15
	JAE    gemv512_g16

gemv512_g32:
	VMOVUPS     (R9)(AX*4), Z8
	VMOVUPS     64(R9)(AX*4), Z9
	VFMADD231PS (R10)(AX*4), Z8, Z0
	VFMADD231PS (R11)(AX*4), Z8, Z1
	VFMADD231PS (R12)(AX*4), Z8, Z2
	VFMADD231PS (R13)(AX*4), Z8, Z3
	VFMADD231PS 64(R10)(AX*4), Z9, Z4
	VFMADD231PS 64(R11)(AX*4), Z9, Z5
	VFMADD231PS 64(R12)(AX*4), Z9, Z6
	VFMADD231PS 64(R13)(AX*4), Z9, Z7
	ADDQ        $32, AX
	CMPQ        AX, R15
	JB          gemv512_g32

gemv512_g16:
	CMPQ AX, R14
	JAE  gemv512_gtail
	VMOVUPS     (R9)(AX*4), Z8
	VFMADD231PS (R10)(AX*4), Z8, Z0
	VFMADD231PS (R11)(AX*4), Z8, Z1
	VFMADD231PS (R12)(AX*4), Z8, Z2
	VFMADD231PS (R13)(AX*4), Z8, Z3
	ADDQ        $16, AX

gemv512_gtail:
	CMPQ AX, CX
	JAE  gemv512_greduce
	VMOVUPS.Z   (R9)(AX*4), K1, Z8
	VMOVUPS.Z   (R10)(AX*4), K1, Z10
	VMOVUPS.Z   (R11)(AX*4), K1, Z11
	VMOVUPS.Z   (R12)(AX*4), K1, Z12
	VMOVUPS.Z   (R13)(AX*4), K1, Z13
	VFMADD231PS Z10, Z8, Z4
	VFMADD231PS Z11, Z8, Z5
	VFMADD231PS Z12, Z8, Z6
	VFMADD231PS Z13, Z8, Z7

gemv512_greduce:
	VADDPS        Z4, Z0, Z0
	VADDPS        Z5, Z1, Z1
	VADDPS        Z6, Z2, Z2
	VADDPS        Z7, Z3, Z3
	VEXTRACTF64X4 $1, Z0, Y4
	VEXTRACTF64X4 $1, Z1, Y5
	VEXTRACTF64X4 $1, Z2, Y6
	VEXTRACTF64X4 $1, Z3, Y7
	VADDPS        Y4, Y0, Y0
	VADDPS        Y5, Y1, Y1
	VADDPS        Y6, Y2, Y2
	VADDPS        Y7, Y3, Y3
	VHADDPS       Y1, Y0, Y0
	VHADDPS       Y3, Y2, Y2
	VHADDPS       Y2, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VMOVUPS       X0, (DI)
	ADDQ          $16, DI
	LEAQ          (R8)(DX*4), R8
	SUBQ          $4, BX
	JMP           gemv512_rows4

gemv512_rows1:
	TESTQ BX, BX
	JZ    gemv512_done

gemv512_row:
	VXORPS Z0, Z0, Z0
	VXORPS Z4, Z4, Z4
	XORQ   AX, AX
	CMPQ   AX, R15
	JAE    gemv512_r16

gemv512_r32:
	VMOVUPS     (R9)(AX*4), Z8
	VMOVUPS     64(R9)(AX*4), Z9
	VFMADD231PS (R8)(AX*4), Z8, Z0
	VFMADD231PS 64(R8)(AX*4), Z9, Z4
	ADDQ        $32, AX
	CMPQ        AX, R15
	JB          gemv512_r32

gemv512_r16:
	CMPQ AX, R14
	JAE  gemv512_rtail
	VMOVUPS     (R9)(AX*4), Z8
	VFMADD231PS (R8)(AX*4), Z8, Z0
	ADDQ        $16, AX

gemv512_rtail:
	CMPQ AX, CX
	JAE  gemv512_rreduce
	VMOVUPS.Z   (R9)(AX*4), K1, Z8
	VMOVUPS.Z   (R8)(AX*4), K1, Z10
	VFMADD231PS Z10, Z8, Z4

gemv512_rreduce:
	VADDPS        Z4, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y4
	VADDPS        Y4, Y0, Y0
	VEXTRACTF128  $1, Y0, X4
	VADDPS        X4, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VMOVSS        X0, (DI)
	ADDQ          $4, DI
	ADDQ          DX, R8
	DECQ          BX
	JNZ           gemv512_row

gemv512_done:
	VZEROUPPER
	RET

// func gemvF32AVX2(dst, m, x []float32, cols int)
//
// As gemvF32AVX512 with 8 lanes, over the first cols (a multiple of 8)
// columns; the row stride is still len(x).
TEXT ·gemvF32AVX2(SB), NOSPLIT, $0-80
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), BX
	MOVQ m_base+24(FP), R8
	MOVQ x_base+48(FP), R9
	MOVQ x_len+56(FP), DX
	SHLQ $2, DX
	MOVQ cols+72(FP), CX
	MOVQ CX, R15
	ANDQ $-16, R15

gemv2_rows4:
	CMPQ BX, $4
	JB   gemv2_rows1
	MOVQ R8, R10
	LEAQ (R8)(DX*1), R11
	LEAQ (R8)(DX*2), R12
	LEAQ (R11)(DX*2), R13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ   AX, AX
	CMPQ   AX, R15
	JAE    gemv2_g8

gemv2_g16:
	VMOVUPS     (R9)(AX*4), Y8
	VMOVUPS     32(R9)(AX*4), Y9
	VFMADD231PS (R10)(AX*4), Y8, Y0
	VFMADD231PS (R11)(AX*4), Y8, Y1
	VFMADD231PS (R12)(AX*4), Y8, Y2
	VFMADD231PS (R13)(AX*4), Y8, Y3
	VFMADD231PS 32(R10)(AX*4), Y9, Y4
	VFMADD231PS 32(R11)(AX*4), Y9, Y5
	VFMADD231PS 32(R12)(AX*4), Y9, Y6
	VFMADD231PS 32(R13)(AX*4), Y9, Y7
	ADDQ        $16, AX
	CMPQ        AX, R15
	JB          gemv2_g16

gemv2_g8:
	CMPQ AX, CX
	JAE  gemv2_greduce
	VMOVUPS     (R9)(AX*4), Y8
	VFMADD231PS (R10)(AX*4), Y8, Y0
	VFMADD231PS (R11)(AX*4), Y8, Y1
	VFMADD231PS (R12)(AX*4), Y8, Y2
	VFMADD231PS (R13)(AX*4), Y8, Y3

gemv2_greduce:
	VADDPS       Y4, Y0, Y0
	VADDPS       Y5, Y1, Y1
	VADDPS       Y6, Y2, Y2
	VADDPS       Y7, Y3, Y3
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVUPS      X0, (DI)
	ADDQ         $16, DI
	LEAQ         (R8)(DX*4), R8
	SUBQ         $4, BX
	JMP          gemv2_rows4

gemv2_rows1:
	TESTQ BX, BX
	JZ    gemv2_done

gemv2_row:
	VXORPS Y0, Y0, Y0
	VXORPS Y4, Y4, Y4
	XORQ   AX, AX
	CMPQ   AX, R15
	JAE    gemv2_r8

gemv2_r16:
	VMOVUPS     (R9)(AX*4), Y8
	VMOVUPS     32(R9)(AX*4), Y9
	VFMADD231PS (R8)(AX*4), Y8, Y0
	VFMADD231PS 32(R8)(AX*4), Y9, Y4
	ADDQ        $16, AX
	CMPQ        AX, R15
	JB          gemv2_r16

gemv2_r8:
	CMPQ AX, CX
	JAE  gemv2_rreduce
	VMOVUPS     (R9)(AX*4), Y8
	VFMADD231PS (R8)(AX*4), Y8, Y0

gemv2_rreduce:
	VADDPS       Y4, Y0, Y0
	VEXTRACTF128 $1, Y0, X4
	VADDPS       X4, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, (DI)
	ADDQ         $4, DI
	ADDQ         DX, R8
	DECQ         BX
	JNZ          gemv2_row

gemv2_done:
	VZEROUPPER
	RET
