package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/model/onnx"
)

func init() { commands = append(commands, newImportCmd) }

type importReport struct {
	Format   string     `json:"format"` // "onnx" or "json"
	Loss     model.Loss `json:"loss"`
	Features int        `json:"features"`
	Target   string     `json:"target"`
	Version  int64      `json:"version"`
	Bytes    int        `json:"bytes"`
	Producer string     `json:"producer,omitempty"`
	Output   string     `json:"output,omitempty"`
	Classes  []string   `json:"classes,omitempty"`
	Ops      []string   `json:"ops,omitempty"`
}

func newImportCmd(e *env) *cobra.Command {
	var (
		out, target string
		features    []string
		version     int64
		asJSON      bool
	)
	c := &cobra.Command{
		Use:   "import FILE --out M.lnm [--features a,b,...] [--target NAME] [--version V]",
		Short: "convert an ONNX or JSON linear model into a linnet model",
		Long: "import reads a linear model trained elsewhere: an ONNX file (as skl2onnx writes\n" +
			"scikit-learn's linear models and their preprocessing (Scaler, Imputer,\n" +
			"OneHotEncoder in a ColumnTransformer), or MatMul/Gemm + Add\n" +
			"(+ Sigmoid) graphs from PyTorch or TensorFlow converters), or the JSON form\n" +
			"{\"kind\":\"linear\"|\"logistic\",\"features\":[...],\"coef\":[...],\"intercept\":b,\n" +
			"\"mean\":[...],\"scale\":[...]}. Feature names come from the graph's inputs (one\n" +
			"input per column) or from --features, in column order. Anything linnet cannot\n" +
			"serve exactly is refused, naming the node and why. The result is unsigned.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := readLimited(args[0], onnx.MaxFileSize)
			if err != nil {
				return err
			}
			r := importReport{Format: "onnx"}
			var m *model.Model
			if onnx.IsJSON(file) {
				r.Format = "json"
				if m, err = onnx.ImportJSON(file); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				if features != nil {
					if len(features) != len(m.Features) {
						return fmt.Errorf("--features names %d features, %s has %d", len(features), args[0], len(m.Features))
					}
					m.Features = features
				}
				if target != "" {
					m.Target = target
				}
			} else {
				var info *onnx.Info
				m, info, err = onnx.Import(file, onnx.Options{Features: features, Target: target})
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				r.Producer, r.Output, r.Classes, r.Ops = info.Producer, info.Output, info.Classes, info.Ops
			}
			if version == 0 {
				version = model.DefaultVersion()
			}
			m.Version = version
			m.Created = time.Now().UTC().Truncate(time.Second)
			b, err := m.MarshalBinary()
			if err != nil {
				return err
			}
			if err := model.WriteFile(out, b); err != nil {
				return fmt.Errorf("write %q: %w", out, err)
			}
			r.Loss, r.Features, r.Target, r.Version, r.Bytes = m.Loss, len(m.Features), m.Target, m.Version, len(b)
			if asJSON {
				return writeJSON(e.stdout, r)
			}
			fmt.Fprintf(e.stdout, "wrote %s: %s model of %d features predicting %q, version %d, %d bytes (from %s",
				out, m.Loss, len(m.Features), m.Target, m.Version, len(b), r.Format)
			if r.Format == "onnx" {
				fmt.Fprintf(e.stdout, " output %q; ops %s", r.Output, strings.Join(r.Ops, ", "))
			}
			fmt.Fprintln(e.stdout, ")")
			if len(r.Classes) == 2 {
				fmt.Fprintf(e.stdout, "predictions are P(class %q); class 0 is %q\n", r.Classes[1], r.Classes[0])
			}
			fmt.Fprintf(e.stderr, "note: %s is unsigned; sign it with linnet sign before pushing it\n", out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "output model file (required)")
	c.Flags().StringSliceVar(&features, "features", nil, "feature names for the input columns, in order (comma-separated)")
	c.Flags().StringVar(&target, "target", "", "name of what the model predicts (default: from the file)")
	c.Flags().Int64Var(&version, "version", 0, "model version (default: a new version above every earlier one)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.MarkFlagRequired("out")
	return c
}

// readLimited reads a whole file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}
