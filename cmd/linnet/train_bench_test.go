package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/linnet-edge/linnet/scripts/gendata/synth"
)

var (
	benchCSVOnce sync.Once
	benchCSVPath string
	benchCSVErr  error
)

const benchRows = 1_000_000

// benchCSV writes, once per run, the bench data set: 1,000,000 rows x 32
// features (about 250 MB) in a temporary directory.
func benchCSV(b *testing.B) string {
	benchCSVOnce.Do(func() {
		dir, err := os.MkdirTemp("", "linnet-bench")
		if err != nil {
			benchCSVErr = err
			return
		}
		benchCSVPath = filepath.Join(dir, "bench.csv")
		f, err := os.Create(benchCSVPath)
		if err != nil {
			benchCSVErr = err
			return
		}
		w := bufio.NewWriter(f)
		if _, err := synth.WriteCSV(w, "bench", benchRows, 1); err != nil {
			benchCSVErr = err
		}
		w.Flush()
		f.Close()
	})
	if benchCSVErr != nil {
		b.Fatal(benchCSVErr)
	}
	return benchCSVPath
}

// BenchmarkTrainCLI runs `linnet train` end to end on a CSV of 1,000,000
// rows x 32 features and reports rows/s (rows of the file per second of
// the whole command: reading, training, scoring and writing the model).
// exact is the default (in memory), exact-stream streams it; sgd-epochs1
// streams one SGD epoch, sgd-epochs5 holds the rows in memory.
func BenchmarkTrainCLI(b *testing.B) {
	path := benchCSV(b)
	defer os.RemoveAll(filepath.Dir(path))
	fi, _ := os.Stat(path)
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"exact", nil},
		{"exact-stream", []string{"--stream"}},
		{"sgd-epochs1", []string{"--optimizer", "adaptive", "--epochs", "1"}},
		{"sgd-epochs5", []string{"--optimizer", "adaptive", "--epochs", "5", "--patience", "-1"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			out := filepath.Join(b.TempDir(), "m.lnm")
			b.SetBytes(fi.Size())
			for b.Loop() {
				args := append([]string{"train", "--data", path, "--target", "y", "--out", out}, c.flags...)
				if _, err := linnetB(b, args...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// linnetB runs the CLI in-process, like linnet, for benchmarks.
func linnetB(b *testing.B, args ...string) (string, error) {
	b.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), err
}
