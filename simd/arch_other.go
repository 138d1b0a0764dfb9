//go:build (!amd64 && !arm64) || noasm || !gc

package simd

// archInit registers nothing: generic kernels only.
func archInit() {}
