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

// TREE16(OP) leaves in Z0 the 16 block totals under OP (VPADDD, VPMAXUD),
// in block order, of Z0..Z7, where lanes 0-7 of Zi hold partial values of
// block 2i and lanes 8-15 of block 2i+1. Z8..Z11 are scratch, Z30 holds
// dotQ8perm and K2 0xcccc. Three rounds halve the partials of each block:
//
//  1. pairs of vectors: within each 128-bit lane, dwords 0-1 of Zi take in
//     dwords 2-3 of Zi and dwords 2-3 of Zi+1 take in its dwords 0-1 (K2);
//  2. each 128-bit lane then holds a quarter of one block of each of
//     Z0..Z3 (Z4..Z7) in its four dwords;
//  3. combining the quarters leaves one dword per block, which VPERMD puts
//     in block order.
#define TREE16(OP) \
	VSHUFPS    $0x4e, Z1, Z0, Z8; \
	VSHUFPS    $0x4e, Z3, Z2, Z9; \
	VSHUFPS    $0x4e, Z5, Z4, Z10; \
	VSHUFPS    $0x4e, Z7, Z6, Z11; \
	OP         Z8, Z0, Z0; \
	OP         Z9, Z2, Z2; \
	OP         Z10, Z4, Z4; \
	OP         Z11, Z6, Z6; \
	OP         Z8, Z1, K2, Z0; \
	OP         Z9, Z3, K2, Z2; \
	OP         Z10, Z5, K2, Z4; \
	OP         Z11, Z7, K2, Z6; \
	VSHUFPS    $0x88, Z2, Z0, Z8; \
	VSHUFPS    $0xdd, Z2, Z0, Z9; \
	VSHUFPS    $0x88, Z6, Z4, Z10; \
	VSHUFPS    $0xdd, Z6, Z4, Z11; \
	OP         Z9, Z8, Z8; \
	OP         Z11, Z10, Z10; \
	VSHUFI32X4 $0x88, Z10, Z8, Z0; \
	VSHUFI32X4 $0xdd, Z10, Z8, Z1; \
	OP         Z1, Z0, Z0; \
	VPERMD     Z0, Z30, Z0

#define Q8REDUCE16 TREE16(VPADDD)

// PAIR16(OP, a, b, d) folds the 16 partials of one block in a and of one
// in b into d: lanes 0-7 for a's block, 8-15 for b's, the layout TREE16
// takes. Z18 is scratch; K3 holds 0xff00.
#define PAIR16(OP, a, b, d) \
	VSHUFI64X2 $0x4e, b, a, Z18; \
	OP         Z18, a, d; \
	OP         Z18, b, K3, d

// TREE32(OP) is TREE16 for 16 blocks of 16 partials each, in Z0..Z15.
#define TREE32(OP) \
	PAIR16(OP, Z0, Z1, Z0); \
	PAIR16(OP, Z2, Z3, Z1); \
	PAIR16(OP, Z4, Z5, Z2); \
	PAIR16(OP, Z6, Z7, Z3); \
	PAIR16(OP, Z8, Z9, Z4); \
	PAIR16(OP, Z10, Z11, Z5); \
	PAIR16(OP, Z12, Z13, Z6); \
	PAIR16(OP, Z14, Z15, Z7); \
	TREE16(OP)

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

// dotQ8L2 and dotQ8L3 are the VPERMT2D indices of Q8TREE's second and
// third rounds; dotQ8L3b, dotQ8L3+4 in every lane, is the other half of
// the third.
DATA dotQ8L2<>+0(SB)/4, $17
DATA dotQ8L2<>+4(SB)/4, $0
DATA dotQ8L2<>+8(SB)/4, $19
DATA dotQ8L2<>+12(SB)/4, $2
DATA dotQ8L2<>+16(SB)/4, $21
DATA dotQ8L2<>+20(SB)/4, $4
DATA dotQ8L2<>+24(SB)/4, $23
DATA dotQ8L2<>+28(SB)/4, $6
DATA dotQ8L2<>+32(SB)/4, $25
DATA dotQ8L2<>+36(SB)/4, $8
DATA dotQ8L2<>+40(SB)/4, $27
DATA dotQ8L2<>+44(SB)/4, $10
DATA dotQ8L2<>+48(SB)/4, $29
DATA dotQ8L2<>+52(SB)/4, $12
DATA dotQ8L2<>+56(SB)/4, $31
DATA dotQ8L2<>+60(SB)/4, $14
GLOBL dotQ8L2<>(SB), RODATA|NOPTR, $64

DATA dotQ8L3<>+0(SB)/4, $0
DATA dotQ8L3<>+4(SB)/4, $8
DATA dotQ8L3<>+8(SB)/4, $2
DATA dotQ8L3<>+12(SB)/4, $10
DATA dotQ8L3<>+16(SB)/4, $1
DATA dotQ8L3<>+20(SB)/4, $9
DATA dotQ8L3<>+24(SB)/4, $3
DATA dotQ8L3<>+28(SB)/4, $11
DATA dotQ8L3<>+32(SB)/4, $16
DATA dotQ8L3<>+36(SB)/4, $24
DATA dotQ8L3<>+40(SB)/4, $18
DATA dotQ8L3<>+44(SB)/4, $26
DATA dotQ8L3<>+48(SB)/4, $17
DATA dotQ8L3<>+52(SB)/4, $25
DATA dotQ8L3<>+56(SB)/4, $19
DATA dotQ8L3<>+60(SB)/4, $27
GLOBL dotQ8L3<>(SB), RODATA|NOPTR, $64

DATA dotQ8L3b<>+0(SB)/4, $4
DATA dotQ8L3b<>+4(SB)/4, $12
DATA dotQ8L3b<>+8(SB)/4, $6
DATA dotQ8L3b<>+12(SB)/4, $14
DATA dotQ8L3b<>+16(SB)/4, $5
DATA dotQ8L3b<>+20(SB)/4, $13
DATA dotQ8L3b<>+24(SB)/4, $7
DATA dotQ8L3b<>+28(SB)/4, $15
DATA dotQ8L3b<>+32(SB)/4, $20
DATA dotQ8L3b<>+36(SB)/4, $28
DATA dotQ8L3b<>+40(SB)/4, $22
DATA dotQ8L3b<>+44(SB)/4, $30
DATA dotQ8L3b<>+48(SB)/4, $21
DATA dotQ8L3b<>+52(SB)/4, $29
DATA dotQ8L3b<>+56(SB)/4, $23
DATA dotQ8L3b<>+60(SB)/4, $31
GLOBL dotQ8L3b<>(SB), RODATA|NOPTR, $64

// dotQ8c80 is 0x80 in every byte, dotQ8m128 the words -128 and 0: the
// constants that dotQ8AVX512VNNI broadcasts straight from memory.
DATA dotQ8c80<>+0(SB)/4, $0x80808080
GLOBL dotQ8c80<>(SB), RODATA|NOPTR, $4
DATA dotQ8m128<>+0(SB)/4, $0x0000ff80
GLOBL dotQ8m128<>(SB), RODATA|NOPTR, $4

// Q8MERGE1(a, b, t) folds a and b, lanes 0-7 of each one block's partial
// sums and lanes 8-15 another's, into a: each 128-bit lane keeps two dwords
// of a's block and two of b's (dwords 2-3 under K2 0xcccc). t is scratch.
#define Q8MERGE1(a, b, t) \
	VSHUFPS $0x4e, b, a, t; \
	VPADDD  t, a, a; \
	VPADDD  t, b, K2, a

// Q8MERGE2(a, b, t) folds two results of Q8MERGE1 into a: a's dwords stay
// in its even lanes and b's in the odd ones (K3 0xaaaa), and VPERMT2D with
// Z30 (dotQ8L2) brings each one's partner, the other dword of its block in
// the same pair of lanes. b is destroyed, t is scratch.
#define Q8MERGE2(a, b, t) \
	VPBLENDMD b, a, K3, t; \
	VPERMT2D  a, Z30, b; \
	VPADDD    b, t, a

// Q8TREE(a0, ..., a7, s0, s1, s2, s3) leaves in a0 the 16 int32 block
// sums, in block order, of a0..a7, where lanes 0-7 of ai hold partial sums
// of block 2i and lanes 8-15 of block 2i+1; s0..s3 are scratch. It is
// seven merges of two vectors into one, three instructions each, one of
// them a shuffle, in three rounds (Q8ROUND1..3) that the main loop
// interleaves with the products of the next group: after the first round a
// block's partials sit in 4 lanes, after the second in 2 (a0: blocks 0 4 2
// 6 0 4 2 6 1 5 3 7 1 5 3 7, a4 the same plus 8), and the third adds the
// two of each block, picked in block order from a0 and a4 by Z27 (dotQ8L3)
// and Z26 (dotQ8L3b). Its copy is a register move, which takes no port.
#define Q8ROUND1(a0, a1, a2, a3, a4, a5, a6, a7, s0, s1, s2, s3) \
	Q8MERGE1(a0, a1, s0); \
	Q8MERGE1(a2, a3, s1); \
	Q8MERGE1(a4, a5, s2); \
	Q8MERGE1(a6, a7, s3)

#define Q8ROUND2(a0, a2, a4, a6, s0, s1) \
	Q8MERGE2(a0, a2, s0); \
	Q8MERGE2(a4, a6, s1)

#define Q8ROUND3(a0, a4, s0) \
	VMOVDQA64 a0, s0; \
	VPERMT2D  a4, Z27, s0; \
	VPERMT2D  a4, Z26, a0; \
	VPADDD    s0, a0, a0

#define Q8TREE(a0, a1, a2, a3, a4, a5, a6, a7, s0, s1, s2, s3) \
	Q8ROUND1(a0, a1, a2, a3, a4, a5, a6, a7, s0, s1, s2, s3); \
	Q8ROUND2(a0, a2, a4, a6, s0, s1); \
	Q8ROUND3(a0, a4, s0)

// Q8SCALE(a, t) adds to Z29 the block sums in a, less 128*sumsB, times
// sa*sb, for the whole group at BX; t is scratch. VPDPWSSD takes off
// 128*sumsB[k] in one instruction: the low word of the sum (|sum| <=
// 32*128 fits an int16) times the word -128 in Z28, the high word times 0.
#define Q8SCALE(a, t) \
	VPDPWSSD    (R10)(BX*1), Z28, a; \
	VCVTDQ2PS   a, a; \
	VMOVUPS     (R8)(BX*1), t; \
	VMULPS      (R9)(BX*1), t, t; \
	VFMADD231PS t, a, Z29

#define ZERO8(a0, a1, a2, a3, a4, a5, a6, a7) \
	VPXORD a0, a0, a0; \
	VPXORD a1, a1, a1; \
	VPXORD a2, a2, a2; \
	VPXORD a3, a3, a3; \
	VPXORD a4, a4, a4; \
	VPXORD a5, a5, a5; \
	VPXORD a6, a6, a6; \
	VPXORD a7, a7, a7

// func dotQ8AVX512VNNI(qa, qb []int8, sa, sb []float32, sumsB []int32) float32
//
// SI qa, DI qb, R8 sa, R9 sb, R10 sumsB, BX the offset of the group in
// sa, sb and sumsB, CX blocks left. A group of 16 blocks leaves its int32
// products in Z0..Z7 or Z8..Z15, lanes 0-7 of the i-th vector block 2i and
// lanes 8-15 block 2i+1; the main loop alternates between the two sets,
// reducing one group while it multiplies the next. Z29 sums the scaled
// block sums; K1 masks the blocks of the last, partial group.
//
// The work per group is bound by the two vector ports that AVX-512 leaves
// (p0 and p5, which both run VPDPBUSD on Sapphire Rapids): 8 VPXORD and 8
// VPDPBUSD, 21 for Q8TREE and 4 for Q8SCALE, 41 in all, about 20.5
// cycles; the loads (16 of 64 bytes, 2 a cycle) take 8.
TEXT ·dotQ8AVX512VNNI(SB), NOSPLIT, $0-124
	MOVQ qa_base+0(FP), SI
	MOVQ qb_base+24(FP), DI
	MOVQ sa_base+48(FP), R8
	MOVQ sa_len+56(FP), CX
	MOVQ sb_base+72(FP), R9
	MOVQ sumsB_base+96(FP), R10
	XORQ BX, BX
	VPBROADCASTD dotQ8c80<>(SB), Z31
	VMOVDQU32    dotQ8L2<>(SB), Z30
	VMOVDQU32    dotQ8L3<>(SB), Z27
	VMOVDQU32    dotQ8L3b<>(SB), Z26
	VPBROADCASTD dotQ8m128<>(SB), Z28
	MOVL $0xcccc, AX
	KMOVW AX, K2
	MOVL $0xaaaa, AX
	KMOVW AX, K3
	VXORPS Z29, Z29, Z29

	CMPQ CX, $16
	JB   q8_tail
	ZERO8(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	Q8PAIR(0, Z16, Z0)
	Q8PAIR(64, Z17, Z1)
	Q8PAIR(128, Z18, Z2)
	Q8PAIR(192, Z19, Z3)
	Q8PAIR(256, Z16, Z4)
	Q8PAIR(320, Z17, Z5)
	Q8PAIR(384, Z18, Z6)
	Q8PAIR(448, Z19, Z7)
	ADDQ $512, SI
	ADDQ $512, DI
	SUBQ $16, CX

q8_loop:
	// Z0..Z7 hold the group at BX: reduce it, multiply the next into
	// Z8..Z15.
	CMPQ CX, $16
	JB   q8_last0
	ZERO8(Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	Q8ROUND1(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z16, Z17, Z18, Z19)
	Q8PAIR(0, Z20, Z8)
	Q8PAIR(64, Z21, Z9)
	Q8PAIR(128, Z22, Z10)
	Q8PAIR(192, Z23, Z11)
	Q8ROUND2(Z0, Z2, Z4, Z6, Z16, Z17)
	Q8PAIR(256, Z20, Z12)
	Q8PAIR(320, Z21, Z13)
	Q8PAIR(384, Z22, Z14)
	Q8PAIR(448, Z23, Z15)
	Q8ROUND3(Z0, Z4, Z16)
	Q8SCALE(Z0, Z24)
	ADDQ $512, SI
	ADDQ $512, DI
	ADDQ $64, BX
	SUBQ $16, CX

	// The same with the sets swapped.
	CMPQ CX, $16
	JB   q8_last1
	ZERO8(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	Q8ROUND1(Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15, Z20, Z21, Z22, Z23)
	Q8PAIR(0, Z16, Z0)
	Q8PAIR(64, Z17, Z1)
	Q8PAIR(128, Z18, Z2)
	Q8PAIR(192, Z19, Z3)
	Q8ROUND2(Z8, Z10, Z12, Z14, Z20, Z21)
	Q8PAIR(256, Z16, Z4)
	Q8PAIR(320, Z17, Z5)
	Q8PAIR(384, Z18, Z6)
	Q8PAIR(448, Z19, Z7)
	Q8ROUND3(Z8, Z12, Z20)
	Q8SCALE(Z8, Z25)
	ADDQ $512, SI
	ADDQ $512, DI
	ADDQ $64, BX
	SUBQ $16, CX
	JMP  q8_loop

q8_last1:
	Q8TREE(Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15, Z20, Z21, Z22, Z23)
	Q8SCALE(Z8, Z25)
	ADDQ $64, BX
	JMP  q8_tail

q8_last0:
	Q8TREE(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z16, Z17, Z18, Z19)
	Q8SCALE(Z0, Z24)
	ADDQ $64, BX

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
	// Q8SCALE with loads masked to the CX blocks of the group.
	Q8TREE(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z16, Z17, Z18, Z19)
	VMOVDQU32.Z (R10)(BX*1), K1, Z1
	VPDPWSSD    Z1, Z28, Z0
	VCVTDQ2PS   Z0, Z0
	VMOVUPS.Z   (R8)(BX*1), K1, Z2
	VMOVUPS.Z   (R9)(BX*1), K1, Z3
	VMULPS      Z3, Z2, Z2
	VFMADD231PS Z2, Z0, Z29

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

// dotQ4perm puts the block sums that the q4 reduction leaves at position
// 4*(k%4) + k/4 back in block order k (VPERMD indices).
DATA dotQ4perm<>+0(SB)/4, $0
DATA dotQ4perm<>+4(SB)/4, $4
DATA dotQ4perm<>+8(SB)/4, $8
DATA dotQ4perm<>+12(SB)/4, $12
DATA dotQ4perm<>+16(SB)/4, $1
DATA dotQ4perm<>+20(SB)/4, $5
DATA dotQ4perm<>+24(SB)/4, $9
DATA dotQ4perm<>+28(SB)/4, $13
DATA dotQ4perm<>+32(SB)/4, $2
DATA dotQ4perm<>+36(SB)/4, $6
DATA dotQ4perm<>+40(SB)/4, $10
DATA dotQ4perm<>+44(SB)/4, $14
DATA dotQ4perm<>+48(SB)/4, $3
DATA dotQ4perm<>+52(SB)/4, $7
DATA dotQ4perm<>+56(SB)/4, $11
DATA dotQ4perm<>+60(SB)/4, $15
GLOBL dotQ4perm<>(SB), RODATA|NOPTR, $64

// Q4REDUCE16 leaves in Z0 the 16 int32 block sums, in block order, of
// Z0..Z3, where 128-bit lane j of Zi holds partial sums of block 4i+j.
// Z8, Z9 are scratch, Z30 holds dotQ4perm and K2 0xcccc. Z0 and Z1 (Z2
// and Z3) first go into one vector whose lanes hold two dwords of a block
// of each; then one dword per block, and VPERMD puts them in block order.
#define Q4REDUCE16 \
	VSHUFPS $0x4e, Z1, Z0, Z8; \
	VSHUFPS $0x4e, Z3, Z2, Z9; \
	VPADDD  Z8, Z0, Z0; \
	VPADDD  Z9, Z2, Z2; \
	VPADDD  Z8, Z1, K2, Z0; \
	VPADDD  Z9, Z3, K2, Z2; \
	VSHUFPS $0x88, Z2, Z0, Z8; \
	VSHUFPS $0xdd, Z2, Z0, Z9; \
	VPADDD  Z9, Z8, Z0; \
	VPERMD  Z0, Z30, Z0

// dotQ4L2 picks, for block k in order, the first of its two partial sums
// that Q8MERGE1 leaves in Z0 (blocks 0-7) and Z2 (8-15, +16) of the q4
// layout; dotQ4L2b, dotQ4L2+1 in every lane, picks the second.
DATA dotQ4L2<>+0(SB)/4, $0
DATA dotQ4L2<>+4(SB)/4, $4
DATA dotQ4L2<>+8(SB)/4, $8
DATA dotQ4L2<>+12(SB)/4, $12
DATA dotQ4L2<>+16(SB)/4, $2
DATA dotQ4L2<>+20(SB)/4, $6
DATA dotQ4L2<>+24(SB)/4, $10
DATA dotQ4L2<>+28(SB)/4, $14
DATA dotQ4L2<>+32(SB)/4, $16
DATA dotQ4L2<>+36(SB)/4, $20
DATA dotQ4L2<>+40(SB)/4, $24
DATA dotQ4L2<>+44(SB)/4, $28
DATA dotQ4L2<>+48(SB)/4, $18
DATA dotQ4L2<>+52(SB)/4, $22
DATA dotQ4L2<>+56(SB)/4, $26
DATA dotQ4L2<>+60(SB)/4, $30
GLOBL dotQ4L2<>(SB), RODATA|NOPTR, $64

DATA dotQ4L2b<>+0(SB)/4, $1
DATA dotQ4L2b<>+4(SB)/4, $5
DATA dotQ4L2b<>+8(SB)/4, $9
DATA dotQ4L2b<>+12(SB)/4, $13
DATA dotQ4L2b<>+16(SB)/4, $3
DATA dotQ4L2b<>+20(SB)/4, $7
DATA dotQ4L2b<>+24(SB)/4, $11
DATA dotQ4L2b<>+28(SB)/4, $15
DATA dotQ4L2b<>+32(SB)/4, $17
DATA dotQ4L2b<>+36(SB)/4, $21
DATA dotQ4L2b<>+40(SB)/4, $25
DATA dotQ4L2b<>+44(SB)/4, $29
DATA dotQ4L2b<>+48(SB)/4, $19
DATA dotQ4L2b<>+52(SB)/4, $23
DATA dotQ4L2b<>+56(SB)/4, $27
DATA dotQ4L2b<>+60(SB)/4, $31
GLOBL dotQ4L2b<>(SB), RODATA|NOPTR, $64

// dotQ4c0f is 0x0f in every byte, dotQ4m8 the words -8 and 0.
DATA dotQ4c0f<>+0(SB)/4, $0x0f0f0f0f
GLOBL dotQ4c0f<>(SB), RODATA|NOPTR, $4
DATA dotQ4m8<>+0(SB)/4, $0x0000fff8
GLOBL dotQ4m8<>(SB), RODATA|NOPTR, $4

// Q4TREER(a0, a1, a2, a3, s0, s1) is Q4REDUCE16 in 9 instructions instead
// of 10, into a0, with s0 and s1 as scratch: Q8MERGE1 folds a0 and a1 (a2
// and a3) so that each 128-bit lane j holds two partial sums of block j
// (8+j) and two of block 4+j (12+j), and two VPERMT2D with Z30 (dotQ4L2)
// and Z26 (dotQ4L2b) pick the two of each block in block order. K2 holds
// 0xcccc.
#define Q4ROUND1(a0, a1, a2, a3, s0, s1) \
	Q8MERGE1(a0, a1, s0); \
	Q8MERGE1(a2, a3, s1)

#define Q4ROUND2(a0, a2, s0) \
	VMOVDQA64 a0, s0; \
	VPERMT2D  a2, Z30, s0; \
	VPERMT2D  a2, Z26, a0; \
	VPADDD    s0, a0, a0

#define Q4TREER(a0, a1, a2, a3, s0, s1) \
	Q4ROUND1(a0, a1, a2, a3, s0, s1); \
	Q4ROUND2(a0, a2, s0)

#define Q4TREE Q4TREER(Z0, Z1, Z2, Z3, Z8, Z9)

// Q4SCALE(a, t) is Q8SCALE for dot_q4: Z25 holds the word -8.
#define Q4SCALE(a, t) \
	VPDPWSSD    (R10)(BX*1), Z25, a; \
	VCVTDQ2PS   a, a; \
	VMOVUPS     (R8)(BX*1), t; \
	VMULPS      (R9)(BX*1), t, t; \
	VFMADD231PS t, a, Z29

// Q4QUADT adds the products of four blocks to acc: 64 bytes of nibbles
// at woff(SI) and 128 bytes of int8 at xoff(DI). Lane j (128 bits) of acc
// collects block j. Z28 holds 0x0f in every byte; t0..t4 are scratch.
#define Q4QUADT(woff, xoff, acc, t0, t1, t2, t3, t4) \
	VMOVDQU64  woff(SI), t0; \
	VPSRLW     $4, t0, t1; \
	VPANDD     Z28, t0, t0; \
	VPANDD     Z28, t1, t1; \
	VMOVDQU64  xoff(DI), t2; \
	VSHUFI64X2 $0x88, 64+xoff(DI), t2, t3; \
	VSHUFI64X2 $0xdd, 64+xoff(DI), t2, t4; \
	VPDPBUSD   t3, t0, acc; \
	VPDPBUSD   t4, t1, acc

#define Q4QUAD(woff, xoff, acc) Q4QUADT(woff, xoff, acc, Z8, Z9, Z10, Z11, Z12)

// Q4PART is Q4QUAD for the last 1..3 blocks, with byte masks K3 (qw),
// K4 and K5 (the two halves of qx) that load zeros past the slices' ends.
#define Q4PART(acc) \
	VMOVDQU8.Z (SI), K3, Z8; \
	VPSRLW     $4, Z8, Z9; \
	VPANDD     Z28, Z8, Z8; \
	VPANDD     Z28, Z9, Z9; \
	VMOVDQU8.Z (DI), K4, Z10; \
	VMOVDQU8.Z 64(DI), K5, Z13; \
	VSHUFI64X2 $0x88, Z13, Z10, Z11; \
	VSHUFI64X2 $0xdd, Z13, Z10, Z12; \
	VPDPBUSD   Z11, Z8, acc; \
	VPDPBUSD   Z12, Z9, acc

// func dotQ4AVX512VNNI(qw []uint8, qx []int8, sw, sx []float32, sumsX []int32) float32
//
// SI qw, DI qx, R8 sw, R9 sx, R10 sumsX, BX the offset of the group in
// sw, sx and sumsX, CX blocks left. Z0..Z3 or Z4..Z7 hold the int32
// products of a group of 16 blocks, four blocks each: as in
// dotQ8AVX512VNNI the main loop reduces one group while it multiplies the
// next. Z29 sums the scaled block sums. K1 masks the blocks of the last,
// partial group, K2 the upper two dwords of each 128-bit lane.
TEXT ·dotQ4AVX512VNNI(SB), NOSPLIT, $0-124
	MOVQ qw_base+0(FP), SI
	MOVQ qx_base+24(FP), DI
	MOVQ sw_base+48(FP), R8
	MOVQ sw_len+56(FP), CX
	MOVQ sx_base+72(FP), R9
	MOVQ sumsX_base+96(FP), R10
	VPBROADCASTD dotQ4c0f<>(SB), Z28
	VMOVDQU32    dotQ4L2<>(SB), Z30
	VMOVDQU32    dotQ4L2b<>(SB), Z26
	VPBROADCASTD dotQ4m8<>(SB), Z25
	MOVL $0xcccc, AX
	KMOVW AX, K2
	VXORPS Z29, Z29, Z29

	XORQ BX, BX
	CMPQ CX, $16
	JB   q4_tail
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	Q4QUADT(0, 0, Z0, Z16, Z17, Z18, Z19, Z20)
	Q4QUADT(64, 128, Z1, Z16, Z17, Z18, Z19, Z20)
	Q4QUADT(128, 256, Z2, Z16, Z17, Z18, Z19, Z20)
	Q4QUADT(192, 384, Z3, Z16, Z17, Z18, Z19, Z20)
	ADDQ $256, SI
	ADDQ $512, DI
	SUBQ $16, CX

q4_loop:
	// Z0..Z3 hold the group at BX: reduce it, multiply the next into
	// Z4..Z7.
	CMPQ CX, $16
	JB   q4_last0
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	Q4ROUND1(Z0, Z1, Z2, Z3, Z8, Z9)
	Q4QUADT(0, 0, Z4, Z16, Z17, Z18, Z19, Z20)
	Q4QUADT(64, 128, Z5, Z21, Z22, Z23, Z24, Z27)
	Q4ROUND2(Z0, Z2, Z8)
	Q4QUADT(128, 256, Z6, Z16, Z17, Z18, Z19, Z20)
	Q4QUADT(192, 384, Z7, Z21, Z22, Z23, Z24, Z27)
	Q4SCALE(Z0, Z10)
	ADDQ $256, SI
	ADDQ $512, DI
	ADDQ $64, BX
	SUBQ $16, CX

	// The same with the sets swapped.
	CMPQ CX, $16
	JB   q4_last1
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	Q4ROUND1(Z4, Z5, Z6, Z7, Z14, Z15)
	Q4QUADT(0, 0, Z0, Z16, Z17, Z18, Z19, Z20)
	Q4QUADT(64, 128, Z1, Z21, Z22, Z23, Z24, Z27)
	Q4ROUND2(Z4, Z6, Z14)
	Q4QUADT(128, 256, Z2, Z16, Z17, Z18, Z19, Z20)
	Q4QUADT(192, 384, Z3, Z21, Z22, Z23, Z24, Z27)
	Q4SCALE(Z4, Z11)
	ADDQ $256, SI
	ADDQ $512, DI
	ADDQ $64, BX
	SUBQ $16, CX
	JMP  q4_loop

q4_last1:
	Q4TREER(Z4, Z5, Z6, Z7, Z14, Z15)
	Q4SCALE(Z4, Z11)
	ADDQ $64, BX
	JMP  q4_tail

q4_last0:
	Q4TREE
	Q4SCALE(Z0, Z10)
	ADDQ $64, BX

q4_tail:
	// 1..15 blocks left (or none): DX whole quads, then 1..3 blocks.
	TESTQ CX, CX
	JZ    q4_done
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1

	// K3, K4, K5: bytes of the last CX%4 blocks in qw, qx, qx+64.
	MOVQ  CX, R14
	ANDQ  $3, R14
	MOVQ  $-1, R11
	MOVQ  R14, R12
	SHLQ  $4, R12
	BZHIQ R12, R11, AX
	KMOVQ AX, K3
	SHLQ  $1, R12
	BZHIQ R12, R11, AX
	KMOVQ AX, K4
	XORQ  R13, R13
	SUBQ  $64, R12
	CMOVQLT R13, R12
	BZHIQ R12, R11, AX
	KMOVQ AX, K5

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ   CX, DX
	SHRQ   $2, DX
	JZ     q4_part0
	Q4QUAD(0, 0, Z0)
	ADDQ   $64, SI
	ADDQ   $128, DI
	CMPQ   DX, $1
	JE     q4_part1
	Q4QUAD(0, 0, Z1)
	ADDQ   $64, SI
	ADDQ   $128, DI
	CMPQ   DX, $2
	JE     q4_part2
	Q4QUAD(0, 0, Z2)
	ADDQ   $64, SI
	ADDQ   $128, DI

	// Three quads: 1..3 blocks left for Z3.
	TESTQ R14, R14
	JZ    q4_tailsum
	Q4PART(Z3)
	JMP   q4_tailsum

q4_part0:
	Q4PART(Z0)
	JMP q4_tailsum

q4_part1:
	TESTQ R14, R14
	JZ    q4_tailsum
	Q4PART(Z1)
	JMP   q4_tailsum

q4_part2:
	TESTQ R14, R14
	JZ    q4_tailsum
	Q4PART(Z2)

q4_tailsum:
	// Q4SCALE with loads masked to the CX blocks of the group.
	Q4TREE
	VMOVDQU32.Z (R10)(BX*1), K1, Z1
	VPDPWSSD    Z1, Z25, Z0
	VCVTDQ2PS   Z0, Z0
	VMOVUPS.Z   (R8)(BX*1), K1, Z2
	VMOVUPS.Z   (R9)(BX*1), K1, Z3
	VMULPS      Z3, Z2, Z2
	VFMADD231PS Z2, Z0, Z29

q4_done:
	VEXTRACTF64X4 $1, Z29, Y1
	VADDPS        Y1, Y29, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+120(FP)
	RET

// Q4WQUAD sets acc to the products of four blocks, as Q4QUAD without
// VNNI: VPMADDUBSW of nibbles (at most 15) and int8 cannot saturate, nor
// can the sum of two of its int16 results (2*2*15*128 < 2^15); VPMADDWD
// with ones (Z27) widens the pairs to int32.
#define Q4WQUAD(woff, xoff, acc) \
	VMOVDQU64  woff(SI), Z8; \
	VPSRLW     $4, Z8, Z9; \
	VPANDD     Z28, Z8, Z8; \
	VPANDD     Z28, Z9, Z9; \
	VMOVDQU64  xoff(DI), Z10; \
	VSHUFI64X2 $0x88, 64+xoff(DI), Z10, Z11; \
	VSHUFI64X2 $0xdd, 64+xoff(DI), Z10, Z12; \
	VPMADDUBSW Z11, Z8, Z8; \
	VPMADDUBSW Z12, Z9, Z9; \
	VPADDW     Z9, Z8, Z8; \
	VPMADDWD   Z27, Z8, acc

// Q4WPART is Q4WQUAD for the last 1..3 blocks, with the masks of Q4PART.
#define Q4WPART(acc) \
	VMOVDQU8.Z (SI), K3, Z8; \
	VPSRLW     $4, Z8, Z9; \
	VPANDD     Z28, Z8, Z8; \
	VPANDD     Z28, Z9, Z9; \
	VMOVDQU8.Z (DI), K4, Z10; \
	VMOVDQU8.Z 64(DI), K5, Z13; \
	VSHUFI64X2 $0x88, Z13, Z10, Z11; \
	VSHUFI64X2 $0xdd, Z13, Z10, Z12; \
	VPMADDUBSW Z11, Z8, Z8; \
	VPMADDUBSW Z12, Z9, Z9; \
	VPADDW     Z9, Z8, Z8; \
	VPMADDWD   Z27, Z8, acc

// func dotQ4AVX512(qw []uint8, qx []int8, sw, sx []float32, sumsX []int32) float32
//
// As dotQ4AVX512VNNI, with Z27 holding 1 in every int16.
TEXT ·dotQ4AVX512(SB), NOSPLIT, $0-124
	MOVQ qw_base+0(FP), SI
	MOVQ qx_base+24(FP), DI
	MOVQ sw_base+48(FP), R8
	MOVQ sw_len+56(FP), CX
	MOVQ sx_base+72(FP), R9
	MOVQ sumsX_base+96(FP), R10
	MOVL $0x0f, AX
	VPBROADCASTB AX, Z28
	VMOVDQU32 dotQ4perm<>(SB), Z30
	MOVL $0xcccc, AX
	KMOVW AX, K2
	MOVL $0xffff, AX
	KMOVW AX, K1
	MOVL $0x00010001, AX
	VPBROADCASTD AX, Z27
	VXORPS Z29, Z29, Z29

q4w_group:
	CMPQ CX, $16
	JB   q4w_tail
	Q4WQUAD(0, 0, Z0)
	Q4WQUAD(64, 128, Z1)
	Q4WQUAD(128, 256, Z2)
	Q4WQUAD(192, 384, Z3)
	ADDQ $256, SI
	ADDQ $512, DI
	SUBQ $16, CX

q4w_reduce:
	Q4REDUCE16

	// s[k] - 8*sumsX[k], then sum += float(s[k]) * (sw[k]*sx[k]).
	VMOVDQU32.Z (R10), K1, Z1
	VPSLLD      $3, Z1, Z1
	VPSUBD      Z1, Z0, Z0
	VCVTDQ2PS   Z0, Z0
	VMOVUPS.Z   (R8), K1, Z2
	VMOVUPS.Z   (R9), K1, Z3
	VMULPS      Z3, Z2, Z2
	VFMADD231PS Z2, Z0, Z29
	ADDQ        $64, R8
	ADDQ        $64, R9
	ADDQ        $64, R10
	JMP         q4w_group

q4w_tail:
	// 1..15 blocks left (or none): DX whole quads, then 1..3 blocks.
	TESTQ CX, CX
	JZ    q4w_done
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K1

	// K3, K4, K5: bytes of the last CX%4 blocks in qw, qx, qx+64.
	MOVQ  CX, BX
	ANDQ  $3, BX
	MOVQ  $-1, R11
	MOVQ  BX, R12
	SHLQ  $4, R12
	BZHIQ R12, R11, AX
	KMOVQ AX, K3
	SHLQ  $1, R12
	BZHIQ R12, R11, AX
	KMOVQ AX, K4
	XORQ  R13, R13
	SUBQ  $64, R12
	CMOVQLT R13, R12
	BZHIQ R12, R11, AX
	KMOVQ AX, K5

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ   CX, DX
	SHRQ   $2, DX
	JZ     q4w_part0
	Q4WQUAD(0, 0, Z0)
	ADDQ   $64, SI
	ADDQ   $128, DI
	CMPQ   DX, $1
	JE     q4w_part1
	Q4WQUAD(0, 0, Z1)
	ADDQ   $64, SI
	ADDQ   $128, DI
	CMPQ   DX, $2
	JE     q4w_part2
	Q4WQUAD(0, 0, Z2)
	ADDQ   $64, SI
	ADDQ   $128, DI

	// Three quads: 1..3 blocks left for Z3.
	TESTQ BX, BX
	JZ    q4w_tailsum
	Q4WPART(Z3)
	JMP   q4w_tailsum

q4w_part0:
	Q4WPART(Z0)
	JMP q4w_tailsum

q4w_part1:
	TESTQ BX, BX
	JZ    q4w_tailsum
	Q4WPART(Z1)
	JMP   q4w_tailsum

q4w_part2:
	TESTQ BX, BX
	JZ    q4w_tailsum
	Q4WPART(Z2)

q4w_tailsum:
	XORQ CX, CX
	JMP  q4w_reduce

q4w_done:
	VEXTRACTF64X4 $1, Z29, Y1
	VADDPS        Y1, Y29, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+120(FP)
	RET

// Q8WPAIR sets acc to the products of the two blocks at off(SI) and
// off(DI) without VNNI: both sign-extended to int16, VPMADDWD gives 16
// dwords per block, and one shuffle and two adds (K3 0xff00) fold them into
// the layout of Q8PAIR (lanes 0-7 block 2i, lanes 8-15 block 2i+1).
#define Q8WPAIR(off, acc) \
	VPMOVSXBW  off(SI), Z16; \
	VPMOVSXBW  32+off(SI), Z17; \
	VPMOVSXBW  off(DI), Z18; \
	VPMOVSXBW  32+off(DI), Z19; \
	VPMADDWD   Z18, Z16, Z16; \
	VPMADDWD   Z19, Z17, Z17; \
	VSHUFI64X2 $0x4e, Z17, Z16, Z18; \
	VPADDD     Z18, Z16, acc; \
	VPADDD     Z18, Z17, K3, acc

// Q8WHALF does the same for the last, odd block: lanes 0-7 of acc get its
// products, lanes 8-15 zeros.
#define Q8WHALF(off, accy) \
	VPMOVSXBW     off(SI), Z16; \
	VPMOVSXBW     off(DI), Z18; \
	VPMADDWD      Z18, Z16, Z16; \
	VEXTRACTI64X4 $1, Z16, Y17; \
	VPADDD        Y17, Y16, accy

// func dotQ8AVX512(qa, qb []int8, sa, sb []float32) float32
//
// As dotQ8AVX512VNNI without VNNI and without the sign-bit flip, so it
// needs no block sums. SI qa, DI qb, R8 sa, R9 sb, CX blocks left; K1
// masks the blocks of a group.
TEXT ·dotQ8AVX512(SB), NOSPLIT, $0-100
	MOVQ qa_base+0(FP), SI
	MOVQ qb_base+24(FP), DI
	MOVQ sa_base+48(FP), R8
	MOVQ sa_len+56(FP), CX
	MOVQ sb_base+72(FP), R9
	VMOVDQU32 dotQ8perm<>(SB), Z30
	MOVL $0xcccc, AX
	KMOVW AX, K2
	MOVL $0xff00, AX
	KMOVW AX, K3
	MOVL $0xffff, AX
	KMOVW AX, K1
	VXORPS Z29, Z29, Z29

q8w_group:
	CMPQ CX, $16
	JB   q8w_tail
	Q8WPAIR(0, Z0)
	Q8WPAIR(64, Z1)
	Q8WPAIR(128, Z2)
	Q8WPAIR(192, Z3)
	Q8WPAIR(256, Z4)
	Q8WPAIR(320, Z5)
	Q8WPAIR(384, Z6)
	Q8WPAIR(448, Z7)
	ADDQ $512, SI
	ADDQ $512, DI
	SUBQ $16, CX

q8w_reduce:
	Q8REDUCE16
	VCVTDQ2PS   Z0, Z0
	VMOVUPS.Z   (R8), K1, Z2
	VMOVUPS.Z   (R9), K1, Z3
	VMULPS      Z3, Z2, Z2
	VFMADD231PS Z2, Z0, Z29
	ADDQ        $64, R8
	ADDQ        $64, R9
	JMP         q8w_group

q8w_tail:
	// 1..15 blocks left (or none): DX pairs, then maybe one odd block.
	TESTQ CX, CX
	JZ    q8w_done
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
	JZ     q8w_half0
	Q8WPAIR(0, Z0)
	CMPQ   DX, $1
	JE     q8w_half1
	Q8WPAIR(64, Z1)
	CMPQ   DX, $2
	JE     q8w_half2
	Q8WPAIR(128, Z2)
	CMPQ   DX, $3
	JE     q8w_half3
	Q8WPAIR(192, Z3)
	CMPQ   DX, $4
	JE     q8w_half4
	Q8WPAIR(256, Z4)
	CMPQ   DX, $5
	JE     q8w_half5
	Q8WPAIR(320, Z5)
	CMPQ   DX, $6
	JE     q8w_half6
	Q8WPAIR(384, Z6)

	// Seven pairs: CX is 14 or 15.
	TESTQ $1, CX
	JZ    q8w_tailsum
	Q8WHALF(448, Y7)
	JMP   q8w_tailsum

q8w_half0:
	Q8WHALF(0, Y0)
	JMP q8w_tailsum

q8w_half1:
	TESTQ $1, CX
	JZ    q8w_tailsum
	Q8WHALF(64, Y1)
	JMP   q8w_tailsum

q8w_half2:
	TESTQ $1, CX
	JZ    q8w_tailsum
	Q8WHALF(128, Y2)
	JMP   q8w_tailsum

q8w_half3:
	TESTQ $1, CX
	JZ    q8w_tailsum
	Q8WHALF(192, Y3)
	JMP   q8w_tailsum

q8w_half4:
	TESTQ $1, CX
	JZ    q8w_tailsum
	Q8WHALF(256, Y4)
	JMP   q8w_tailsum

q8w_half5:
	TESTQ $1, CX
	JZ    q8w_tailsum
	Q8WHALF(320, Y5)
	JMP   q8w_tailsum

q8w_half6:
	TESTQ $1, CX
	JZ    q8w_tailsum
	Q8WHALF(384, Y6)

q8w_tailsum:
	XORQ CX, CX
	JMP  q8w_reduce

q8w_done:
	VEXTRACTF64X4 $1, Z29, Y1
	VADDPS        Y1, Y29, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+96(FP)
	RET


// QAMAX sets zk to |x| (bit patterns) over the 32 values at SI, lane-wise
// over its two halves, and moves SI to the next block.
#define QAMAX(zk) \
	VPANDD  (SI), Z31, zk; \
	VPANDD  64(SI), Z31, Z16; \
	VPMAXUD Z16, zk, zk; \
	ADDQ    $128, SI

// QBLOCK quantizes the 32 values at SI with the inverse scale at R13 into
// 32 bytes at DI, leaves their lane-wise int32 sums in zk, and moves SI,
// DI and R13 to the next block.
#define QBLOCK(zk) \
	VMOVUPS     (SI), Z16; \
	VMOVUPS     64(SI), Z17; \
	VMULPS.BCST (R13), Z16, Z16; \
	VMULPS.BCST (R13), Z17, Z17; \
	VCVTPS2DQ   Z16, Z16; \
	VCVTPS2DQ   Z17, Z17; \
	VPMINSD     Z23, Z16, Z16; \
	VPMINSD     Z23, Z17, Z17; \
	VPMAXSD     Z29, Z16, Z16; \
	VPMAXSD     Z29, Z17, Z17; \
	VPMOVDB     Z16, (DI); \
	VPMOVDB     Z17, 16(DI); \
	VPADDD      Z17, Z16, zk; \
	ADDQ        $128, SI; \
	ADDQ        $32, DI; \
	ADDQ        $4, R13

// func quantizeQ8AVX512(q []int8, scales []float32, sums []int32, x []float32)
//
// DI q, R8 scales, R9 sums, SI x, CX blocks left, DX values of x left.
// Groups of 16 whole blocks go through at once: the largest |x| of each
// block (TREE32 with VPMAXUD), 16 scales and inverses with one division
// each, the inverses kept in ids on the stack for broadcast multiplies,
// and the sums with TREE32(VPADDD). A group with a non-finite or tiny
// block, and the last 0..16 blocks, go block by block.
//
// Z31 0x7fffffff, Z30 dotQ8perm, Z29 -127 and Z23 127 as int32, Z28 127.0,
// Z27 1.0, Z25 0x7f800000, Z24 0x0f800000; K2 0xcccc, K3 0xff00. BX counts
// the blocks to do one by one, R13 walks ids.
TEXT ·quantizeQ8AVX512(SB), NOSPLIT, $64-96
	MOVQ q_base+0(FP), DI
	MOVQ scales_base+24(FP), R8
	MOVQ scales_len+32(FP), CX
	MOVQ sums_base+48(FP), R9
	MOVQ x_base+72(FP), SI
	MOVQ x_len+80(FP), DX
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	VMOVDQU32 dotQ8perm<>(SB), Z30
	MOVL $-127, AX
	VPBROADCASTD AX, Z29
	MOVL $127, AX
	VPBROADCASTD AX, Z23
	MOVL $0x42fe0000, AX
	VPBROADCASTD AX, Z28
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z27
	MOVL $0x7f800000, AX
	VPBROADCASTD AX, Z25
	MOVL $0x0f800000, AX
	VPBROADCASTD AX, Z24
	MOVL $0xcccc, AX
	KMOVW AX, K2
	MOVL $0xff00, AX
	KMOVW AX, K3
	MOVQ $-1, R11
	XORQ R12, R12

q8q_group:
	CMPQ CX, $16
	JB   q8q_rest
	CMPQ DX, $512
	JB   q8q_rest
	MOVQ SI, R14
	QAMAX(Z0)
	QAMAX(Z1)
	QAMAX(Z2)
	QAMAX(Z3)
	QAMAX(Z4)
	QAMAX(Z5)
	QAMAX(Z6)
	QAMAX(Z7)
	QAMAX(Z8)
	QAMAX(Z9)
	QAMAX(Z10)
	QAMAX(Z11)
	QAMAX(Z12)
	QAMAX(Z13)
	QAMAX(Z14)
	QAMAX(Z15)
	MOVQ R14, SI
	TREE32(VPMAXUD)

	// Any non-finite or tiny block: this group goes block by block.
	VPCMPUD  $5, Z25, Z0, K4
	VPCMPUD  $1, Z24, Z0, K5
	KORW     K5, K4, K4
	KORTESTW K4, K4
	JNZ      q8q_slow16

	// d = amax/127, id = 1/d, for 16 blocks at once.
	VDIVPS  Z28, Z0, Z1
	VDIVPS  Z1, Z27, Z2
	VMOVUPS Z1, (R8)
	LEAQ    ids-64(SP), R13
	VMOVUPS Z2, (R13)
	QBLOCK(Z0)
	QBLOCK(Z1)
	QBLOCK(Z2)
	QBLOCK(Z3)
	QBLOCK(Z4)
	QBLOCK(Z5)
	QBLOCK(Z6)
	QBLOCK(Z7)
	QBLOCK(Z8)
	QBLOCK(Z9)
	QBLOCK(Z10)
	QBLOCK(Z11)
	QBLOCK(Z12)
	QBLOCK(Z13)
	QBLOCK(Z14)
	QBLOCK(Z15)
	TREE32(VPADDD)
	VMOVDQU32 Z0, (R9)
	ADDQ      $64, R8
	ADDQ      $64, R9
	SUBQ      $512, DX
	SUBQ      $16, CX
	JMP       q8q_group

q8q_slow16:
	MOVQ $16, BX
	JMP  q8q_block

q8q_rest:
	MOVQ CX, BX

q8q_block:
	TESTQ BX, BX
	JZ    q8q_blocksdone
	CMPQ  DX, $32
	JB    q8q_partial
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1

q8q_body:
	// amax: the largest |x| as an integer on the bit patterns.
	VPANDD        Z31, Z0, Z2
	VPANDD        Z31, Z1, Z3
	VPMAXUD       Z3, Z2, Z2
	VEXTRACTI64X4 $1, Z2, Y3
	VPMAXUD       Y3, Y2, Y2
	VEXTRACTI128  $1, Y2, X3
	VPMAXUD       X3, X2, X2
	VPSHUFD       $0x4e, X2, X3
	VPMAXUD       X3, X2, X2
	VPSHUFD       $0xb1, X2, X3
	VPMAXUD       X3, X2, X2
	VMOVD         X2, AX
	CMPL          AX, $0x7f800000
	JAE           q8q_nonfinite
	CMPL          AX, $0x0f800000
	JB            q8q_tiny

	// d = amax/127, id = 1/d, q = clamp(round(x*id)).
	VDIVSS       X28, X2, X4
	VDIVSS       X4, X27, X5
	VBROADCASTSS X5, Z5
	VMULPS       Z5, Z0, Z0
	VMULPS       Z5, Z1, Z1
	VCVTPS2DQ    Z0, Z0
	VCVTPS2DQ    Z1, Z1
	VPMINSD      Z23, Z0, Z0
	VPMINSD      Z23, Z1, Z1
	VPMAXSD      Z29, Z0, Z0
	VPMAXSD      Z29, Z1, Z1
	VPMOVDB      Z0, (DI)
	VPMOVDB      Z1, 16(DI)
	VPADDD        Z1, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD        Y1, Y0, Y0
	VEXTRACTI128  $1, Y0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0x4e, X0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0xb1, X0, X1
	VPADDD        X1, X0, X0
	VMOVSS        X4, (R8)
	VMOVD         X0, (R9)

q8q_next:
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, R8
	ADDQ $4, R9
	SUBQ $32, DX
	DECQ CX
	DECQ BX
	JMP  q8q_block

q8q_partial:
	// The last block holds DX (1..31) values: K1 and K2 mask its halves.
	BZHIQ DX, R11, AX
	KMOVW AX, K1
	MOVQ  DX, R14
	SUBQ  $16, R14
	CMOVQLT R12, R14
	BZHIQ R14, R11, AX
	KMOVW AX, K2
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z 64(SI), K2, Z1
	JMP q8q_body

q8q_nonfinite:
	MOVL $0x7fc00000, AX
	JMP  q8q_zero

q8q_tiny:
	XORL AX, AX

q8q_zero:
	MOVL    AX, (R8)
	MOVL    R12, (R9)
	VPXORD  Y0, Y0, Y0
	VMOVDQU Y0, (DI)
	JMP     q8q_next

q8q_blocksdone:
	// Back to groups after a slow group; done after the rest.
	TESTQ CX, CX
	JNZ   q8q_group
	VZEROUPPER
	RET

// func dequantizeQ8AVX512(dst []float32, q []int8, scales []float32)
TEXT ·dequantizeQ8AVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ q_base+24(FP), SI
	MOVQ scales_base+48(FP), R8

dq8_block:
	CMPQ CX, $32
	JB   dq8_tail
	VPMOVSXBD    (SI), Z0
	VPMOVSXBD    16(SI), Z1
	VCVTDQ2PS    Z0, Z0
	VCVTDQ2PS    Z1, Z1
	VBROADCASTSS (R8), Z2
	VMULPS       Z2, Z0, Z0
	VMULPS       Z2, Z1, Z1
	VMOVUPS      Z0, (DI)
	VMOVUPS      Z1, 64(DI)
	ADDQ         $32, SI
	ADDQ         $128, DI
	ADDQ         $4, R8
	SUBQ         $32, CX
	JMP          dq8_block

dq8_tail:
	// CX (0..31) values left: K3 masks their bytes, K1 and K2 the halves.
	TESTQ CX, CX
	JZ    dq8_done
	MOVQ  $-1, R11
	BZHIQ CX, R11, AX
	KMOVQ AX, K3
	KMOVW AX, K1
	SHRQ  $16, AX
	KMOVW AX, K2
	VMOVDQU8.Z   (SI), K3, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMOVSXBD    X0, Z0
	VPMOVSXBD    X1, Z1
	VCVTDQ2PS    Z0, Z0
	VCVTDQ2PS    Z1, Z1
	VBROADCASTSS (R8), Z2
	VMULPS       Z2, Z0, Z0
	VMULPS       Z2, Z1, Z1
	VMOVUPS      Z0, K1, (DI)
	VMOVUPS      Z1, K2, 64(DI)

dq8_done:
	VZEROUPPER
	RET

// packPerm puts the dwords that VPACKSSDW and VPACKSSWB leave in the order
// 0 4 1 5 2 6 3 7 back in order (VPERMD indices).
DATA packPerm<>+0(SB)/4, $0
DATA packPerm<>+4(SB)/4, $4
DATA packPerm<>+8(SB)/4, $1
DATA packPerm<>+12(SB)/4, $5
DATA packPerm<>+16(SB)/4, $2
DATA packPerm<>+20(SB)/4, $6
DATA packPerm<>+24(SB)/4, $3
DATA packPerm<>+28(SB)/4, $7
GLOBL packPerm<>(SB), RODATA|NOPTR, $32

// func quantizeQ8AVX2(q []int8, scales []float32, sums []int32, x []float32)
//
// DI q, R8 scales, R9 sums, SI x, CX blocks. Y15 0x7fffffff, X14 127.0,
// X13 1.0, Y12 127, Y11 -127, Y10 packPerm.
TEXT ·quantizeQ8AVX2(SB), NOSPLIT, $0-96
	MOVQ q_base+0(FP), DI
	MOVQ scales_base+24(FP), R8
	MOVQ scales_len+32(FP), CX
	MOVQ sums_base+48(FP), R9
	MOVQ x_base+72(FP), SI
	MOVL $0x7fffffff, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x42fe0000, AX
	VMOVD AX, X14
	MOVL $0x3f800000, AX
	VMOVD AX, X13
	MOVL $127, AX
	VMOVD AX, X12
	VPBROADCASTD X12, Y12
	MOVL $-127, AX
	VMOVD AX, X11
	VPBROADCASTD X11, Y11
	VMOVDQU packPerm<>(SB), Y10

q8q2_block:
	TESTQ CX, CX
	JZ    q8q2_done
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VPAND   Y15, Y0, Y4
	VPAND   Y15, Y1, Y5
	VPAND   Y15, Y2, Y6
	VPAND   Y15, Y3, Y7
	VPMAXUD Y5, Y4, Y4
	VPMAXUD Y7, Y6, Y6
	VPMAXUD Y6, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPMAXUD X5, X4, X4
	VPSHUFD $0x4e, X4, X5
	VPMAXUD X5, X4, X4
	VPSHUFD $0xb1, X4, X5
	VPMAXUD X5, X4, X4
	VMOVD   X4, AX
	CMPL    AX, $0x7f800000
	JAE     q8q2_nonfinite
	CMPL    AX, $0x0f800000
	JB      q8q2_tiny

	VDIVSS       X14, X4, X6
	VDIVSS       X6, X13, X7
	VBROADCASTSS X7, Y7
	VMULPS       Y7, Y0, Y0
	VMULPS       Y7, Y1, Y1
	VMULPS       Y7, Y2, Y2
	VMULPS       Y7, Y3, Y3
	VCVTPS2DQ    Y0, Y0
	VCVTPS2DQ    Y1, Y1
	VCVTPS2DQ    Y2, Y2
	VCVTPS2DQ    Y3, Y3
	VPMINSD      Y12, Y0, Y0
	VPMINSD      Y12, Y1, Y1
	VPMINSD      Y12, Y2, Y2
	VPMINSD      Y12, Y3, Y3
	VPMAXSD      Y11, Y0, Y0
	VPMAXSD      Y11, Y1, Y1
	VPMAXSD      Y11, Y2, Y2
	VPMAXSD      Y11, Y3, Y3

	// The block sum.
	VPADDD       Y1, Y0, Y8
	VPADDD       Y3, Y2, Y9
	VPADDD       Y9, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPADDD       X9, X8, X8
	VPSHUFD      $0x4e, X8, X9
	VPADDD       X9, X8, X8
	VPSHUFD      $0xb1, X8, X9
	VPADDD       X9, X8, X8

	// int32 to int8, in order.
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD    Y0, Y10, Y0
	VMOVDQU   Y0, (DI)
	VMOVSS    X6, (R8)
	VMOVD     X8, (R9)

q8q2_next:
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, R8
	ADDQ $4, R9
	DECQ CX
	JMP  q8q2_block

q8q2_nonfinite:
	MOVL $0x7fc00000, AX
	JMP  q8q2_zero

q8q2_tiny:
	XORL AX, AX

q8q2_zero:
	MOVL    AX, (R8)
	MOVL    $0, (R9)
	VPXOR   Y0, Y0, Y0
	VMOVDQU Y0, (DI)
	JMP     q8q2_next

q8q2_done:
	VZEROUPPER
	RET

// func dequantizeQ8AVX2(dst []float32, q []int8, scales []float32)
TEXT ·dequantizeQ8AVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ q_base+24(FP), SI
	MOVQ scales_base+48(FP), R8
	SHRQ $5, CX
	JZ   dq82_done

dq82_block:
	VPMOVSXBD    (SI), Y0
	VPMOVSXBD    8(SI), Y1
	VPMOVSXBD    16(SI), Y2
	VPMOVSXBD    24(SI), Y3
	VCVTDQ2PS    Y0, Y0
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VCVTDQ2PS    Y3, Y3
	VBROADCASTSS (R8), Y4
	VMULPS       Y4, Y0, Y0
	VMULPS       Y4, Y1, Y1
	VMULPS       Y4, Y2, Y2
	VMULPS       Y4, Y3, Y3
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, 64(DI)
	VMOVUPS      Y3, 96(DI)
	ADDQ         $32, SI
	ADDQ         $128, DI
	ADDQ         $4, R8
	DECQ         CX
	JNZ          dq82_block

dq82_done:
	VZEROUPPER
	RET

// iota8 is 0..7, the lane numbers of an 8-lane vector.
DATA iota8<>+0(SB)/4, $0
DATA iota8<>+4(SB)/4, $1
DATA iota8<>+8(SB)/4, $2
DATA iota8<>+12(SB)/4, $3
DATA iota8<>+16(SB)/4, $4
DATA iota8<>+20(SB)/4, $5
DATA iota8<>+24(SB)/4, $6
DATA iota8<>+28(SB)/4, $7
GLOBL iota8<>(SB), RODATA|NOPTR, $32

// DQTAIL8 converts the 8 bytes at off(SI), scales them by Y4 and stores
// the lanes whose number (Y5) is below len(dst) (Y6) at off*4(DI); Y7
// holds 8 in every lane.
#define DQTAIL8(off) \
	VPMOVSXBD  off(SI), Y0; \
	VCVTDQ2PS  Y0, Y0; \
	VMULPS     Y4, Y0, Y0; \
	VPCMPGTD   Y5, Y6, Y1; \
	VMASKMOVPS Y0, Y1, (4*off)(DI); \
	VPADDD     Y7, Y5, Y5

// func dequantizeQ8TailAVX2(dst []float32, q *[32]int8, scale float32)
TEXT ·dequantizeQ8TailAVX2(SB), NOSPLIT, $0-36
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), AX
	MOVQ         q+24(FP), SI
	VBROADCASTSS scale+32(FP), Y4
	VMOVDQU      iota8<>(SB), Y5
	VMOVD        AX, X6
	VPBROADCASTD X6, Y6
	MOVL         $8, AX
	VMOVD        AX, X7
	VPBROADCASTD X7, Y7
	DQTAIL8(0)
	DQTAIL8(8)
	DQTAIL8(16)
	DQTAIL8(24)
	VZEROUPPER
	RET

// Q8BLK2 sets acc to the 8 int32 partial sums of the block at off(SI) and
// off(DI), with Y0..Y3 as scratch.
#define Q8BLK2(off, acc) \
	VPMOVSXBW off(SI), Y0; \
	VPMOVSXBW 16+off(SI), Y1; \
	VPMOVSXBW off(DI), Y2; \
	VPMOVSXBW 16+off(DI), Y3; \
	VPMADDWD  Y2, Y0, Y0; \
	VPMADDWD  Y3, Y1, Y1; \
	VPADDD    Y1, Y0, acc

// Q4BLK2 sets acc to the 8 int32 partial sums of the nibbles at woff(SI)
// times the bytes at xoff(DI), with Y0 as scratch, Y15 0x0f bytes and
// Y14 1 in every int16.
#define Q4BLK2(woff, xoff, acc) \
	VMOVDQU     woff(SI), X0; \
	VPSRLW      $4, X0, X1; \
	VINSERTI128 $1, X1, Y0, Y0; \
	VPAND       Y15, Y0, Y0; \
	VPMADDUBSW  xoff(DI), Y0, Y0; \
	VPMADDWD    Y14, Y0, acc

// REDUCE8 leaves in Y4 the sums of Y4..Y11, block order.
#define REDUCE8 \
	VPHADDD    Y5, Y4, Y4; \
	VPHADDD    Y7, Y6, Y6; \
	VPHADDD    Y9, Y8, Y8; \
	VPHADDD    Y11, Y10, Y10; \
	VPHADDD    Y6, Y4, Y4; \
	VPHADDD    Y10, Y8, Y8; \
	VPERM2I128 $0x20, Y8, Y4, Y5; \
	VPERM2I128 $0x31, Y8, Y4, Y6; \
	VPADDD     Y6, Y5, Y4

// HSUM8 leaves the sum of the int32 lanes of Y4 in X4[0].
#define HSUM8 \
	VEXTRACTI128 $1, Y4, X5; \
	VPADDD       X5, X4, X4; \
	VPSHUFD      $0x4e, X4, X5; \
	VPADDD       X5, X4, X4; \
	VPSHUFD      $0xb1, X4, X5; \
	VPADDD       X5, X4, X4

// func dotQ8AVX2(qa, qb []int8, sa, sb []float32) float32
//
// SI qa, DI qb, R8 sa, R9 sb, CX blocks left; Y12 sums 8 blocks at a
// time, X13 the last blocks one by one.
TEXT ·dotQ8AVX2(SB), NOSPLIT, $0-100
	MOVQ qa_base+0(FP), SI
	MOVQ qb_base+24(FP), DI
	MOVQ sa_base+48(FP), R8
	MOVQ sa_len+56(FP), CX
	MOVQ sb_base+72(FP), R9
	VXORPS Y12, Y12, Y12
	VXORPS X13, X13, X13

q82_group:
	CMPQ CX, $8
	JB   q82_tail
	Q8BLK2(0, Y4)
	Q8BLK2(32, Y5)
	Q8BLK2(64, Y6)
	Q8BLK2(96, Y7)
	Q8BLK2(128, Y8)
	Q8BLK2(160, Y9)
	Q8BLK2(192, Y10)
	Q8BLK2(224, Y11)
	REDUCE8
	VCVTDQ2PS   Y4, Y4
	VMOVUPS     (R8), Y5
	VMULPS      (R9), Y5, Y5
	VFMADD231PS Y5, Y4, Y12
	ADDQ        $256, SI
	ADDQ        $256, DI
	ADDQ        $32, R8
	ADDQ        $32, R9
	SUBQ        $8, CX
	JMP         q82_group

q82_tail:
	TESTQ CX, CX
	JZ    q82_done
	Q8BLK2(0, Y4)
	HSUM8
	VCVTDQ2PS   X4, X4
	VMOVSS      (R8), X5
	VMULSS      (R9), X5, X5
	VFMADD231SS X5, X4, X13
	ADDQ        $32, SI
	ADDQ        $32, DI
	ADDQ        $4, R8
	ADDQ        $4, R9
	DECQ        CX
	JMP         q82_tail

q82_done:
	VEXTRACTF128 $1, Y12, X0
	VADDPS       X12, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VADDSS       X13, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+96(FP)
	RET

// func dotQ4AVX2(qw []uint8, qx []int8, sw, sx []float32, sumsX []int32) float32
//
// SI qw, DI qx, R8 sw, R9 sx, R10 sumsX, CX blocks left; Y12 sums 8
// blocks at a time, X13 the last blocks one by one.
TEXT ·dotQ4AVX2(SB), NOSPLIT, $0-124
	MOVQ qw_base+0(FP), SI
	MOVQ qx_base+24(FP), DI
	MOVQ sw_base+48(FP), R8
	MOVQ sw_len+56(FP), CX
	MOVQ sx_base+72(FP), R9
	MOVQ sumsX_base+96(FP), R10
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x00010001, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	VXORPS Y12, Y12, Y12
	VXORPS X13, X13, X13

q42_group:
	CMPQ CX, $8
	JB   q42_tail
	Q4BLK2(0, 0, Y4)
	Q4BLK2(16, 32, Y5)
	Q4BLK2(32, 64, Y6)
	Q4BLK2(48, 96, Y7)
	Q4BLK2(64, 128, Y8)
	Q4BLK2(80, 160, Y9)
	Q4BLK2(96, 192, Y10)
	Q4BLK2(112, 224, Y11)
	REDUCE8
	VMOVDQU     (R10), Y5
	VPSLLD      $3, Y5, Y5
	VPSUBD      Y5, Y4, Y4
	VCVTDQ2PS   Y4, Y4
	VMOVUPS     (R8), Y5
	VMULPS      (R9), Y5, Y5
	VFMADD231PS Y5, Y4, Y12
	ADDQ        $128, SI
	ADDQ        $256, DI
	ADDQ        $32, R8
	ADDQ        $32, R9
	ADDQ        $32, R10
	SUBQ        $8, CX
	JMP         q42_group

q42_tail:
	TESTQ CX, CX
	JZ    q42_done
	Q4BLK2(0, 0, Y4)
	HSUM8
	MOVL        (R10), AX
	SHLL        $3, AX
	VMOVD       AX, X5
	VPSUBD      X5, X4, X4
	VCVTDQ2PS   X4, X4
	VMOVSS      (R8), X5
	VMULSS      (R9), X5, X5
	VFMADD231SS X5, X4, X13
	ADDQ        $16, SI
	ADDQ        $32, DI
	ADDQ        $4, R8
	ADDQ        $4, R9
	ADDQ        $4, R10
	DECQ        CX
	JMP         q42_tail

q42_done:
	VEXTRACTF128 $1, Y12, X0
	VADDPS       X12, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VADDSS       X13, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+120(FP)
	RET

// VPDPBUSDY(d, v, r) is the VEX (AVX-VNNI) VPDPBUSD Yd, Yv, Yr: Yd += the
// sums of four products of unsigned bytes of Yv and signed bytes of Yr.
// Go's assembler emits only the EVEX form, which needs AVX-512, so the
// bytes are spelled out: C4, RXB.00010, W.vvvv.L.pp (W0, L1, pp 66), 50,
// ModRM 11.d.r, with R, B and vvvv inverted.
#define VPDPBUSDY(d, v, r) \
	BYTE $0xc4; \
	BYTE $(0x42 | ((1-(d>>3))<<7) | ((1-(r>>3))<<5)); \
	BYTE $(((15-v)<<3) | 5); \
	BYTE $0x50; \
	BYTE $(0xc0 | ((d&7)<<3) | (r&7))

// Q8VNNIBLK sets Y(accn) to the 8 int32 partial sums of the block at
// off(SI) and off(DI), qa's sign bits flipped with Y15 (0x80 bytes).
#define Q8VNNIBLK(off, accn, acc) \
	VPXOR   off(SI), Y15, Y0; \
	VMOVDQU off(DI), Y1; \
	VPXOR   acc, acc, acc; \
	VPDPBUSDY(accn, 0, 1)

// Q4VNNIBLK sets Y(accn) to the 8 int32 partial sums of the nibbles at
// woff(SI) times the bytes at xoff(DI); Y15 holds 0x0f bytes.
#define Q4VNNIBLK(woff, xoff, accn, acc) \
	VMOVDQU     woff(SI), X0; \
	VPSRLW      $4, X0, X1; \
	VINSERTI128 $1, X1, Y0, Y0; \
	VPAND       Y15, Y0, Y0; \
	VMOVDQU     xoff(DI), Y1; \
	VPXOR       acc, acc, acc; \
	VPDPBUSDY(accn, 0, 1)

// func dotQ8AVXVNNI(qa, qb []int8, sa, sb []float32, sumsB []int32) float32
//
// SI qa, DI qb, R8 sa, R9 sb, R10 sumsB, CX blocks left; Y12 sums 8
// blocks at a time, X13 the last blocks one by one.
TEXT ·dotQ8AVXVNNI(SB), NOSPLIT, $0-124
	MOVQ qa_base+0(FP), SI
	MOVQ qb_base+24(FP), DI
	MOVQ sa_base+48(FP), R8
	MOVQ sa_len+56(FP), CX
	MOVQ sb_base+72(FP), R9
	MOVQ sumsB_base+96(FP), R10
	MOVL $0x80808080, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VXORPS Y12, Y12, Y12
	VXORPS X13, X13, X13

q8v_group:
	CMPQ CX, $8
	JB   q8v_tail
	Q8VNNIBLK(0, 4, Y4)
	Q8VNNIBLK(32, 5, Y5)
	Q8VNNIBLK(64, 6, Y6)
	Q8VNNIBLK(96, 7, Y7)
	Q8VNNIBLK(128, 8, Y8)
	Q8VNNIBLK(160, 9, Y9)
	Q8VNNIBLK(192, 10, Y10)
	Q8VNNIBLK(224, 11, Y11)
	REDUCE8
	VMOVDQU     (R10), Y5
	VPSLLD      $7, Y5, Y5
	VPSUBD      Y5, Y4, Y4
	VCVTDQ2PS   Y4, Y4
	VMOVUPS     (R8), Y5
	VMULPS      (R9), Y5, Y5
	VFMADD231PS Y5, Y4, Y12
	ADDQ        $256, SI
	ADDQ        $256, DI
	ADDQ        $32, R8
	ADDQ        $32, R9
	ADDQ        $32, R10
	SUBQ        $8, CX
	JMP         q8v_group

q8v_tail:
	TESTQ CX, CX
	JZ    q8v_done
	Q8VNNIBLK(0, 4, Y4)
	HSUM8
	MOVL        (R10), AX
	SHLL        $7, AX
	VMOVD       AX, X5
	VPSUBD      X5, X4, X4
	VCVTDQ2PS   X4, X4
	VMOVSS      (R8), X5
	VMULSS      (R9), X5, X5
	VFMADD231SS X5, X4, X13
	ADDQ        $32, SI
	ADDQ        $32, DI
	ADDQ        $4, R8
	ADDQ        $4, R9
	ADDQ        $4, R10
	DECQ        CX
	JMP         q8v_tail

q8v_done:
	VEXTRACTF128 $1, Y12, X0
	VADDPS       X12, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VADDSS       X13, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+120(FP)
	RET

// func dotQ4AVXVNNI(qw []uint8, qx []int8, sw, sx []float32, sumsX []int32) float32
//
// Registers as in dotQ8AVXVNNI; Y15 holds 0x0f bytes.
TEXT ·dotQ4AVXVNNI(SB), NOSPLIT, $0-124
	MOVQ qw_base+0(FP), SI
	MOVQ qx_base+24(FP), DI
	MOVQ sw_base+48(FP), R8
	MOVQ sw_len+56(FP), CX
	MOVQ sx_base+72(FP), R9
	MOVQ sumsX_base+96(FP), R10
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VXORPS Y12, Y12, Y12
	VXORPS X13, X13, X13

q4v_group:
	CMPQ CX, $8
	JB   q4v_tail
	Q4VNNIBLK(0, 0, 4, Y4)
	Q4VNNIBLK(16, 32, 5, Y5)
	Q4VNNIBLK(32, 64, 6, Y6)
	Q4VNNIBLK(48, 96, 7, Y7)
	Q4VNNIBLK(64, 128, 8, Y8)
	Q4VNNIBLK(80, 160, 9, Y9)
	Q4VNNIBLK(96, 192, 10, Y10)
	Q4VNNIBLK(112, 224, 11, Y11)
	REDUCE8
	VMOVDQU     (R10), Y5
	VPSLLD      $3, Y5, Y5
	VPSUBD      Y5, Y4, Y4
	VCVTDQ2PS   Y4, Y4
	VMOVUPS     (R8), Y5
	VMULPS      (R9), Y5, Y5
	VFMADD231PS Y5, Y4, Y12
	ADDQ        $128, SI
	ADDQ        $256, DI
	ADDQ        $32, R8
	ADDQ        $32, R9
	ADDQ        $32, R10
	SUBQ        $8, CX
	JMP         q4v_group

q4v_tail:
	TESTQ CX, CX
	JZ    q4v_done
	Q4VNNIBLK(0, 0, 4, Y4)
	HSUM8
	MOVL        (R10), AX
	SHLL        $3, AX
	VMOVD       AX, X5
	VPSUBD      X5, X4, X4
	VCVTDQ2PS   X4, X4
	VMOVSS      (R8), X5
	VMULSS      (R9), X5, X5
	VFMADD231SS X5, X4, X13
	ADDQ        $16, SI
	ADDQ        $32, DI
	ADDQ        $4, R8
	ADDQ        $4, R9
	ADDQ        $4, R10
	DECQ        CX
	JMP         q4v_tail

q4v_done:
	VEXTRACTF128 $1, Y12, X0
	VADDPS       X12, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VADDSS       X13, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+120(FP)
	RET
