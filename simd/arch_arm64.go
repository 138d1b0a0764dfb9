//go:build !noasm && gc

package simd

// archInit registers the arm64 kernels this CPU can run, fastest measured first.
func archInit() {}
