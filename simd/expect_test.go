package simd

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestExpectKernels proves which kernels a test run used. It always logs the
// features and kernels (visible with -v); when LINNET_EXPECT_KERNELS is set
// it also asserts them, so a run under an emulated CPU fails if it silently
// took another path (scripts/qemu-test.sh sets it for each CPU it runs).
//
// The value is a comma-separated list: op=kernel pins one operation, a bare
// kernel name is what every operation not pinned must run. For example
// "neon,dot_q8=sdot,dot_q4=sdot" on a CPU with SDOT, "neon" on a
// Cortex-A72, "generic" on GOARCH=arm. Without a bare name, operations not
// pinned are not checked.
func TestExpectKernels(t *testing.T) {
	got := Kernels()
	t.Logf("arch %s, features [%s]", Arch, strings.Join(Features(), " "))
	t.Logf("kernels %s", formatKernels(got))
	spec := os.Getenv("LINNET_EXPECT_KERNELS")
	if spec == "" {
		t.Skip("LINNET_EXPECT_KERNELS is not set")
	}
	want, err := parseExpect(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range Ops() {
		if w, ok := want[op]; ok && got[op] != w {
			t.Errorf("%s runs %s, LINNET_EXPECT_KERNELS wants %s", op, got[op], w)
		}
	}
}

// formatKernels prints the kernels in the stable order of Ops.
func formatKernels(k map[string]string) string {
	s := make([]string, 0, len(k))
	for _, op := range Ops() {
		s = append(s, op+"="+k[op])
	}
	return strings.Join(s, ",")
}

// parseExpect turns a LINNET_EXPECT_KERNELS value into the kernel wanted per
// operation.
func parseExpect(spec string) (map[string]string, error) {
	want := map[string]string{}
	pinned := map[string]bool{}
	def := ""
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		op, name, ok := strings.Cut(item, "=")
		if !ok {
			if def != "" {
				return nil, fmt.Errorf("LINNET_EXPECT_KERNELS %q names two defaults, %s and %s", spec, def, item)
			}
			def = item
			continue
		}
		op, name = strings.TrimSpace(op), strings.TrimSpace(name)
		if _, err := lookup(op); err != nil {
			return nil, fmt.Errorf("LINNET_EXPECT_KERNELS %q: %w", spec, err)
		}
		if name == "" {
			return nil, fmt.Errorf("LINNET_EXPECT_KERNELS %q: no kernel for %s", spec, op)
		}
		want[op] = name
		pinned[op] = true
	}
	if def != "" {
		for _, op := range Ops() {
			if !pinned[op] {
				want[op] = def
			}
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("LINNET_EXPECT_KERNELS %q expects nothing", spec)
	}
	return want, nil
}

func TestParseExpect(t *testing.T) {
	w, err := parseExpect("neon, dot_q8=sdot,dot_q4=sdot")
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != len(Ops()) || w[OpDotQ8] != "sdot" || w[OpDotQ4] != "sdot" || w[OpDotF32] != "neon" {
		t.Errorf("got %v", w)
	}
	w, err = parseExpect("dot_f32=avx2")
	if err != nil || len(w) != 1 || w[OpDotF32] != "avx2" {
		t.Errorf("got %v, %v", w, err)
	}
	for _, bad := range []string{",", "neon,sdot", "dot_q9=neon", "dot_q8="} {
		if _, err := parseExpect(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
