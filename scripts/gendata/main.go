// Command gendata writes a synthetic CSV data set with a known linear
// ground truth, for linnet's demo, tests and benchmarks:
//
//	go run ./scripts/gendata -kind houses -rows 10000 -seed 1 -out houses.csv
//
// Kinds: houses (regression, features in very different units),
// logistic-separable, logistic-noisy (binary classification) and bench
// (32 standard normal features). The ground truth of each is documented in
// package synth; -truth prints it as JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/linnet-edge/linnet/scripts/gendata/synth"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gendata:", err)
		os.Exit(1)
	}
}

func run() error {
	kind := flag.String("kind", "houses", fmt.Sprintf("data set, one of %v", synth.Kinds))
	rows := flag.Int("rows", 10000, "number of rows")
	seed := flag.Uint64("seed", 1, "random seed: the same seed gives the same file")
	out := flag.String("out", "", "output file (default standard output)")
	truth := flag.Bool("truth", false, "print the ground truth as JSON and exit")
	flag.Parse()
	if *truth {
		t, err := synth.For(*kind)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(t)
	}
	if *rows < 0 {
		return fmt.Errorf("-rows %d is negative", *rows)
	}
	w := os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if _, err := synth.WriteCSV(w, *kind, *rows, *seed); err != nil {
		return err
	}
	if w != os.Stdout {
		return w.Close()
	}
	return nil
}
