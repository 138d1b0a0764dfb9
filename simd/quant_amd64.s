//go:build !noasm && gc

#include "textflag.h"

// dotQ8perm puts the 16 block sums that the reduction leaves in the order
// 0 2 4 6 1 3 5 7 8 10 12 14 9 11 13 15 back in block order (VPERMD indices).
DATA dotQ8perm<>+0(SB)/4, $0
DATA dotQ8perm<>+4(SB)/4, $4
DATA dotQ8perm<>+8(SB)/4, $1
DATA dotQ8perm<>+12(SB)/4, $5
DATA dotQ8perm<>+16(SB)/4, $2
DATA dotQ8perm<>+20(SB)/4, $6
DATA dotQ8perm<>+24(SB)/4, $3
DATA dotQ8perm<>+28(SB)/4, $7
DATA dotQ8perm<>+32(SB)/4, $8
DATA dotQ8perm<>+36(SB)/4, $12
DATA dotQ8perm<>+40(SB)/4, $9
DATA dotQ8perm<>+44(SB)/4, $13
DATA dotQ8perm<>+48(SB)/4, $10
DATA dotQ8perm<>+52(SB)/4, $14
DATA dotQ8perm<>+56(SB)/4, $11
DATA dotQ8perm<>+60(SB)/4, $15
GLOBL dotQ8perm<>(SB), RODATA|NOPTR, $64

// Q8PAIR adds the products of 64 bytes (two blocks) at off to acc, with
// Z31 holding 0x80 in every byte.
#define Q8PAIR(off, t, acc) \
	VPXORD   off(SI), Z31, t; \
	VPDPBUSD off(DI), t, acc

// Q8HALF does the same for the last, odd block of 32 bytes: a 32-byte load
// zeroes the upper half, whose bytes then multiply zeros of qb.
#define Q8HALF(off, ty, t, acc) \
	VMOVDQU32 off(SI), ty; \
	VMOVDQU32 off(DI), Y17; \
	VPXORD    Z31, t, t; \
	VPDPBUSD  Z17, t, acc

// func dotQ8AVX512VNNI(qa, qb []int8, sa, sb []float32, sumsB []int32) float32
//
// SI qa, DI qb, R8 sa, R9 sb, R10 sumsB, CX blocks left. Z0..Z7 hold the
// int32 products of a group of 16 blocks, lanes 0-7 of Zi block 2i and
// lanes 8-15 block 2i+1. Z29 sums the scaled block sums; K1 masks the
// blocks of the group, K2 the upper two dwords of each 128-bit lane.
TEXT ·dotQ8AVX512VNNI(SB), NOSPLIT, $0-124
	MOVQ qa_base+0(FP), SI
	MOVQ qb_base+24(FP), DI
	MOVQ sa_base+48(FP), R8
	MOVQ sa_len+56(FP), CX
	MOVQ sb_base+72(FP), R9
	MOVQ sumsB_base+96(FP), R10
	MOVL $0x80, AX
	VPBROADCASTB AX, Z31
	VMOVDQU32 dotQ8perm<>(SB), Z30
	MOVL $0xcccc, AX
	KMOVW AX, K2
	MOVL $0xffff, AX
	KMOVW AX, K1
	VXORPS Z29, Z29, Z29

q8_group:
	CMPQ CX, $16
	JB   q8_tail
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	Q8PAIR(0, Z8, Z0)
	Q8PAIR(64, Z9, Z1)
	Q8PAIR(128, Z10, Z2)
	Q8PAIR(192, Z11, Z3)
	Q8PAIR(256, Z12, Z4)
	Q8PAIR(320, Z13, Z5)
	Q8PAIR(384, Z14, Z6)
	Q8PAIR(448, Z15, Z7)
	ADDQ $512, SI
	ADDQ $512, DI
	SUBQ $16, CX

q8_reduce:
	// Pairs of vectors: within each 128-bit lane, dwords 0-1 of Zi gain
	// dwords 2-3 of Zi, and dwords 2-3 of Zi+1 gain its dwords 0-1.
	VSHUFPS $0x4e, Z1, Z0, Z8
	VSHUFPS $0x4e, Z3, Z2, Z9
	VSHUFPS $0x4e, Z5, Z4, Z10
	VSHUFPS $0x4e, Z7, Z6, Z11
	VPADDD  Z8, Z0, Z0
	VPADDD  Z9, Z2, Z2
	VPADDD  Z10, Z4, Z4
	VPADDD  Z11, Z6, Z6
	VPADDD  Z8, Z1, K2, Z0
	VPADDD  Z9, Z3, K2, Z2
	VPADDD  Z10, Z5, K2, Z4
	VPADDD  Z11, Z7, K2, Z6

	// Each 128-bit lane then holds one quarter of a block of Z0..Z3
	// (Z4..Z7) in its four dwords.
	VSHUFPS $0x88, Z2, Z0, Z8
	VSHUFPS $0xdd, Z2, Z0, Z9
	VSHUFPS $0x88, Z6, Z4, Z10
	VSHUFPS $0xdd, Z6, Z4, Z11
	VPADDD  Z9, Z8, Z8
	VPADDD  Z11, Z10, Z10

	// Add the quarters: one dword per block, then block order.
	VSHUFI32X4 $0x88, Z10, Z8, Z0
	VSHUFI32X4 $0xdd, Z10, Z8, Z1
	VPADDD     Z1, Z0, Z0
	VPERMD     Z0, Z30, Z0

	// s[k] - 128*sumsB[k], then sum += float(s[k]) * (sa[k]*sb[k]).
	VMOVDQU32.Z (R10), K1, Z1
	VPSLLD      $7, Z1, Z1
	VPSUBD      Z1, Z0, Z0
	VCVTDQ2PS   Z0, Z0
	VMOVUPS.Z   (R8), K1, Z2
	VMOVUPS.Z   (R9), K1, Z3
	VMULPS      Z3, Z2, Z2
	VFMADD231PS Z2, Z0, Z29
	ADDQ        $64, R8
	ADDQ        $64, R9
	ADDQ        $64, R10
	JMP         q8_group

q8_tail:
	// 1..15 blocks left (or none): DX pairs, then maybe one odd block.
	TESTQ CX, CX
	JZ    q8_done
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	MOVQ   CX, DX
	SHRQ   $1, DX
	JZ     q8_half0
	Q8PAIR(0, Z8, Z0)
	CMPQ   DX, $1
	JE     q8_half1
	Q8PAIR(64, Z9, Z1)
	CMPQ   DX, $2
	JE     q8_half2
	Q8PAIR(128, Z10, Z2)
	CMPQ   DX, $3
	JE     q8_half3
	Q8PAIR(192, Z11, Z3)
	CMPQ   DX, $4
	JE     q8_half4
	Q8PAIR(256, Z12, Z4)
	CMPQ   DX, $5
	JE     q8_half5
	Q8PAIR(320, Z13, Z5)
	CMPQ   DX, $6
	JE     q8_half6
	Q8PAIR(384, Z14, Z6)

	// Seven pairs: CX is 14 or 15.
	TESTQ $1, CX
	JZ    q8_tailsum
	Q8HALF(448, Y15, Z15, Z7)
	JMP   q8_tailsum

q8_half0:
	Q8HALF(0, Y8, Z8, Z0)
	JMP q8_tailsum

q8_half1:
	TESTQ $1, CX
	JZ    q8_tailsum
	Q8HALF(64, Y9, Z9, Z1)
	JMP   q8_tailsum

q8_half2:
	TESTQ $1, CX
	JZ    q8_tailsum
	Q8HALF(128, Y10, Z10, Z2)
	JMP   q8_tailsum

q8_half3:
	TESTQ $1, CX
	JZ    q8_tailsum
	Q8HALF(192, Y11, Z11, Z3)
	JMP   q8_tailsum

q8_half4:
	TESTQ $1, CX
	JZ    q8_tailsum
	Q8HALF(256, Y12, Z12, Z4)
	JMP   q8_tailsum

q8_half5:
	TESTQ $1, CX
	JZ    q8_tailsum
	Q8HALF(320, Y13, Z13, Z5)
	JMP   q8_tailsum

q8_half6:
	TESTQ $1, CX
	JZ    q8_tailsum
	Q8HALF(384, Y14, Z14, Z6)

q8_tailsum:
	XORQ CX, CX
	JMP  q8_reduce

q8_done:
	VEXTRACTF64X4 $1, Z29, Y1
	VADDPS        Y1, Y29, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+120(FP)
	RET
