package simd

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// Operation names, as `linnet cpu` and `linnet bench` print them.
const (
	OpDotF32       = "dot_f32"
	OpAxpyF32      = "axpy_f32"
	OpScaleAddF32  = "scale_add_f32"
	OpGemvF32      = "gemv_f32"
	OpQuantizeQ8   = "quantize_q8"
	OpDequantizeQ8 = "dequantize_q8"
	OpDotQ8        = "dot_q8"
	OpDotQ4        = "dot_q4"
)

// Tiers order implementations from slowest to fastest family. Limit caps every
// operation at a tier; an implementation's tier is where it belongs.
const (
	TierGeneric = 0
	Tier1       = 1 // amd64: avx2, vek, avxvnni; arm64: neon
	Tier2       = 2 // amd64: avx512, avx512vnni; arm64: sdot
)

var tierNames = map[string]int{
	"generic": TierGeneric,
	"avx2":    Tier1, "neon": Tier1,
	"avx512": Tier2, "sdot": Tier2,
}

// impl is one implementation of an operation.
type impl[F any] struct {
	name string
	tier int
	fn   F
}

// op is an operation with its implementations, best first, and the one in use.
type op[F any] struct {
	name  string
	impls []impl[F] // available on this CPU, best first; generic last
	cur   impl[F]
}

// add registers an implementation if the CPU can run it. Arch files call it
// in order of preference, fastest measured first.
func (o *op[F]) add(name string, tier int, ok bool, fn F) {
	if ok {
		o.impls = append(o.impls, impl[F]{name, tier, fn})
	}
}

func (o *op[F]) opName() string { return o.name }

func (o *op[F]) names() []string {
	s := make([]string, len(o.impls))
	for i, im := range o.impls {
		s[i] = im.name
	}
	return s
}

func (o *op[F]) kernels() []kernel {
	s := make([]kernel, len(o.impls))
	for i, im := range o.impls {
		s[i] = kernel{im.name, im.tier}
	}
	return s
}

func (o *op[F]) current() string { return o.cur.name }

func (o *op[F]) use(name string) error {
	for _, im := range o.impls {
		if im.name == name {
			o.cur = im
			return nil
		}
	}
	return fmt.Errorf("simd: %s has no kernel %q on this CPU (have %s)", o.name, name, strings.Join(o.names(), ", "))
}

func (o *op[F]) limit(tier int) {
	for _, im := range o.impls {
		if im.tier <= tier {
			o.cur = im
			return
		}
	}
}

// find returns the implementation called name, for tests and benchmarks.
func (o *op[F]) find(name string) (F, bool) {
	for _, im := range o.impls {
		if im.name == name {
			return im.fn, true
		}
	}
	var zero F
	return zero, false
}

// kernel is an implementation's name and tier.
type kernel struct {
	name string
	tier int
}

type anyOp interface {
	opName() string
	names() []string
	kernels() []kernel
	current() string
	use(string) error
	limit(int)
}

var (
	dotF32       = &op[func(a, b []float32) float32]{name: OpDotF32}
	axpyF32      = &op[func(alpha float32, x, y []float32)]{name: OpAxpyF32}
	scaleAddF32  = &op[func(a float32, x []float32, b float32, y []float32)]{name: OpScaleAddF32}
	gemvF32      = &op[func(dst, m, x []float32)]{name: OpGemvF32}
	quantizeQ8   = &op[func(q []int8, scales []float32, sums []int32, x []float32)]{name: OpQuantizeQ8}
	dequantizeQ8 = &op[func(dst []float32, q []int8, scales []float32)]{name: OpDequantizeQ8}
	dotQ8        = &op[func(a, b Q8) float32]{name: OpDotQ8}
	dotQ4        = &op[func(w Q4, x Q8) float32]{name: OpDotQ4}

	ops = []anyOp{dotF32, axpyF32, scaleAddF32, gemvF32, quantizeQ8, dequantizeQ8, dotQ8, dotQ4}

	// capTier is the highest tier the dispatch may choose: Tier2 after
	// Reset, the argument of the last Limit.
	capTier = Tier2
)

func init() {
	archInit() // registers the arch kernels this CPU can run, best first
	dotF32.add("generic", TierGeneric, true, dotF32Generic)
	axpyF32.add("generic", TierGeneric, true, axpyF32Generic)
	scaleAddF32.add("generic", TierGeneric, true, scaleAddF32Generic)
	gemvF32.add("generic", TierGeneric, true, gemvF32Generic)
	quantizeQ8.add("generic", TierGeneric, true, quantizeQ8Generic)
	dequantizeQ8.add("generic", TierGeneric, true, dequantizeQ8Generic)
	dotQ8.add("generic", TierGeneric, true, dotQ8Generic)
	dotQ4.add("generic", TierGeneric, true, dotQ4Generic)
	Reset()
	if v := os.Getenv("LINNET_KERNELS"); v != "" {
		// An unknown value must not stop the daemon: it keeps the default
		// choice, and Kernels shows what runs.
		_ = Limit(v)
	}
}

func lookup(name string) (anyOp, error) {
	for _, o := range ops {
		if o.opName() == name {
			return o, nil
		}
	}
	return nil, fmt.Errorf("simd: unknown operation %q", name)
}

// Ops returns the operation names in a stable order.
func Ops() []string {
	s := make([]string, len(ops))
	for i, o := range ops {
		s[i] = o.opName()
	}
	return s
}

// Kernels returns the kernel in use for each operation.
func Kernels() map[string]string {
	m := make(map[string]string, len(ops))
	for _, o := range ops {
		m[o.opName()] = o.current()
	}
	return m
}

// Available returns the kernels this CPU can run for op, best first; generic
// is always last.
func Available(op string) []string {
	o, err := lookup(op)
	if err != nil {
		return nil
	}
	return o.names()
}

// Use forces op to run the kernel called name. It is not safe to call while
// other goroutines use the package.
func Use(op, name string) error {
	o, err := lookup(op)
	if err != nil {
		return err
	}
	return o.use(name)
}

// Limit makes every operation use its best kernel at or below tier, one of
// "generic", "avx2", "avx512" (amd64) or "neon", "sdot" (arm64). It is not
// safe to call while other goroutines use the package.
func Limit(tier string) error {
	t, ok := tierNames[tier]
	if !ok {
		names := make([]string, 0, len(tierNames))
		for n := range tierNames {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("simd: unknown kernel tier %q (want one of %s)", tier, strings.Join(names, ", "))
	}
	for _, o := range ops {
		o.limit(t)
	}
	capTier = t
	return nil
}

// Reset restores the default choice: the best kernel of every operation.
func Reset() {
	for _, o := range ops {
		o.limit(Tier2)
	}
	capTier = Tier2
}
