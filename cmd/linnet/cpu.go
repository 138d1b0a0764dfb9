package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/simd"
)

func init() { commands = append(commands, newCPUCmd) }

type cpuReport struct {
	Arch     string            `json:"arch"`
	CPU      string            `json:"cpu,omitempty"`
	Features []string          `json:"features"`
	Kernels  map[string]string `json:"kernels"`
}

func newCPUCmd(e *env) *cobra.Command {
	var asJSON bool
	var kernels string
	c := &cobra.Command{
		Use:   "cpu",
		Short: "show the CPU features seen and the kernel chosen for each operation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := limitKernels(kernels); err != nil {
				return err
			}
			r := cpuReport{Arch: simd.Arch, CPU: simd.CPUName(), Features: simd.Features(), Kernels: simd.Kernels()}
			if r.Features == nil {
				r.Features = []string{}
			}
			if asJSON {
				return writeJSON(e.stdout, r)
			}
			fmt.Fprintf(e.stdout, "arch      %s\ncpu       %s\nfeatures  %v\n\n", r.Arch, r.CPU, r.Features)
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "OP\tKERNEL\tAVAILABLE")
			for _, op := range simd.Ops() {
				fmt.Fprintf(tw, "%s\t%s\t%v\n", op, r.Kernels[op], simd.Available(op))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&kernels, "kernels", "", "cap the kernels at a tier: generic, avx2, avx512, neon, sdot")
	return c
}

// limitKernels applies a --kernels flag; empty keeps the default choice.
func limitKernels(tier string) error {
	if tier == "" {
		return nil
	}
	return simd.Limit(tier)
}
