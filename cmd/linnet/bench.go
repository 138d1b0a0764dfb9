package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/simd"
)

func init() { commands = append(commands, newBenchCmd) }

type benchRow struct {
	Op      string  `json:"op"`
	N       int     `json:"n"`
	Kernel  string  `json:"kernel"`
	NsPerOp float64 `json:"ns_per_op"`
}

func newBenchCmd(e *env) *cobra.Command {
	var (
		asJSON bool
		opsArg string
		sizes  string
		minDur time.Duration
		repeat int
	)
	c := &cobra.Command{
		Use:   "bench",
		Short: "measure every kernel this CPU can run, generic included",
		Long: "bench times each operation at each size with every kernel this CPU can run.\n" +
			"gemv_f32 multiplies " + strconv.Itoa(simd.GemvRows) + " rows of n values by one vector.\n" +
			"Compare kernels within one run: absolute times move with the machine's load.\n" +
			"--repeat N measures every row N times, in N interleaved rounds, and reports\n" +
			"the median, which a shared machine's bursts of load move far less.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ops := simd.Ops()
			if opsArg != "" {
				ops = strings.Split(opsArg, ",")
				for _, op := range ops {
					if !slices.Contains(simd.Ops(), op) {
						return fmt.Errorf("--ops: unknown operation %q (have %s)", op, strings.Join(simd.Ops(), ","))
					}
				}
			}
			if repeat < 1 {
				return fmt.Errorf("--repeat %d: want at least 1", repeat)
			}
			var ns []int
			for _, s := range strings.Split(sizes, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || n <= 0 {
					return fmt.Errorf("--sizes: %q is not a positive whole number", s)
				}
				ns = append(ns, n)
			}
			type key struct {
				op, kernel string
				n          int
			}
			var rows []benchRow
			times := map[key][]float64{}
			for round := range repeat {
				for _, op := range ops {
					for _, n := range ns {
						for _, k := range simd.Available(op) {
							if err := cmd.Context().Err(); err != nil {
								return err
							}
							t, err := simd.Measure(op, k, n, minDur)
							if err != nil {
								return err
							}
							if round == 0 {
								rows = append(rows, benchRow{op, n, k, 0})
							}
							times[key{op, k, n}] = append(times[key{op, k, n}], t)
						}
					}
				}
			}
			for i, r := range rows {
				rows[i].NsPerOp = median(times[key{r.Op, r.Kernel, r.N}])
			}
			if asJSON {
				return writeJSON(e.stdout, struct {
					Results []benchRow `json:"results"`
				}{rows})
			}
			return printBench(e, rows)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&opsArg, "ops", "", "comma-separated operations (default: all)")
	c.Flags().StringVar(&sizes, "sizes", "16,64,256,1024,4096,65536", "comma-separated vector lengths")
	c.Flags().DurationVar(&minDur, "time", 100*time.Millisecond, "minimum time per measurement")
	c.Flags().IntVar(&repeat, "repeat", 1, "rounds of measurements; each row reports its median")
	return c
}

// printBench prints one line per op and size, with each kernel's time and
// its speed-up over generic.
func printBench(e *env, rows []benchRow) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tn\tkernel\tns/op\tx generic\t")
	gen := map[string]float64{}
	for _, r := range rows {
		if r.Kernel == "generic" {
			gen[fmt.Sprint(r.Op, r.N)] = r.NsPerOp
		}
	}
	for _, r := range rows {
		speed := ""
		if g := gen[fmt.Sprint(r.Op, r.N)]; g > 0 {
			speed = fmt.Sprintf("%.2f", g/r.NsPerOp)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%s\t\n", r.Op, r.N, r.Kernel, r.NsPerOp, speed)
	}
	return tw.Flush()
}

// median returns the middle value of v (the mean of the two middle ones for
// an even count). It sorts v.
func median(v []float64) float64 {
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 0 {
		return (v[m-1] + v[m]) / 2
	}
	return v[m]
}
