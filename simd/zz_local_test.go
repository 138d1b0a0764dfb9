package simd

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Local measurement helper, not committed.
func TestZZMeasure(t *testing.T) {
	spec := os.Getenv("ZZ")
	if spec == "" {
		t.Skip()
	}
	ops := strings.Split(spec, ",")
	for _, op := range ops {
		for _, n := range []int{16, 256, 4096, 65536} {
			for _, k := range Available(op) {
				best := 1e18
				for r := 0; r < 7; r++ {
					v, _ := Measure(op, k, n, 20*time.Millisecond)
					best = min(best, v)
				}
				fmt.Printf("%-14s %6d %-11s %10.1f\n", op, n, k, best)
			}
		}
	}
}
