// Package simd owns linnet's vector kernels and chooses, once at start-up,
// which implementation of each operation runs on this CPU.
//
// # Operations
//
// Every exported function checks its arguments and then calls the kernel
// chosen for its operation through a function variable, so a hot call never
// re-checks CPU features:
//
//	dot_f32        DotF32(a, b)               sum a[i]*b[i]
//	axpy_f32       Axpy(alpha, x, y)          y[i] += alpha*x[i]
//	scale_add_f32  ScaleAdd(a, x, b, y)       y[i] = a*x[i] + b*y[i]
//	gemv_f32       Gemv(dst, m, x)            dst[r] = DotF32(m[r*n:(r+1)*n], x)
//	quantize_q8    QuantizeQ8(dst, x)         block-wise symmetric int8
//	dequantize_q8  DequantizeQ8(dst, v)       the inverse, up to rounding
//	dot_q8         DotQ8(a, b)                q8 · q8, int32 inside a block
//	dot_q4         DotQ4(w, x)                q4 · q8, int32 inside a block
//
// Slices of different lengths are a programmer error: the functions panic
// with a message that names the operation and both lengths.
//
// # Quantized vectors
//
// A Q8 holds n values in blocks of BlockSize (32). Block k has one float32
// scale; value i is Q[i] * Scales[i/32]. The last block is padded with zeros
// to its full size, so kernels only ever see whole blocks. Sums[k] is the sum
// of block k's int8 values; QuantizeQ8 fills it and kernels may rely on it
// (it turns the VNNI unsigned×signed product into a signed one).
//
// A Q4 holds 4-bit values, 16 bytes per block: byte j of a block carries
// element j in its low nibble and element j+16 in its high nibble, each
// stored as q+8, so a nibble decodes to q in [-8, 7]. QuantizeQ4 emits
// q in [-7, 7].
//
// Quantization rounds half to even (what the CPUs' convert instructions do),
// so every kernel is bit-exact with the generic code. A block that holds a
// NaN or an infinity is stored with a NaN scale and zero values: any dot
// product that touches it is NaN, which the caller can see and reject.
//
// # Tolerance
//
// Integer work is exact. Float kernels may add in a different order than the
// generic loop (several accumulators, fused multiply-add), so results differ
// from it by at most a few ulps times n times sum|a[i]*b[i]|; tests check
// that bound. NaN and ±Inf propagate as IEEE 754 says: a NaN input gives a
// NaN result, a +Inf product with no -Inf gives +Inf.
//
// # Implementations
//
// generic (pure Go, always compiled) is the reference. On amd64: avx2
// (AVX2+FMA), avxvnni (AVX-VNNI, int8 dots only), avx512 (AVX-512 F/BW/VL)
// and avx512vnni, plus vek (github.com/viterin/vek) for dot_f32 and gemv_f32,
// registered after our kernels so bench measures it but it is never chosen
// where ours are faster; on arm64: neon and sdot (ARMv8.2 dot product).
// GOARCH=arm and every other architecture run generic code, as does any
// build with the noasm tag.
//
// Which kernel runs is decided once, in init, from what
// github.com/klauspost/cpuid/v2 reports. Kernels reports the choice,
// Available lists what this CPU can run, and Use or Limit force a choice
// (tests, benchmarks, and operators on a CPU that lies about its features).
// The environment variable LINNET_KERNELS, read at init, takes the same
// value as Limit: LINNET_KERNELS=generic runs pure Go everywhere.
package simd
