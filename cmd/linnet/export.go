package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/model/onnx"
)

func init() { commands = append(commands, newExportCmd) }

func newExportCmd(e *env) *cobra.Command {
	var out, format string
	c := &cobra.Command{
		Use:   "export M.lnm --format onnx|json --out F",
		Short: "write a linnet model as ONNX or JSON, for other runtimes",
		Long: fmt.Sprintf("export writes the model's standardization and (dequantized) weights as an\n"+
			"ONNX graph (IR version %d, opset %d, ai.onnx.ml %d: one input [N, 1] per column,\n"+
			"Imputer and OneHotEncoder for the preprocessing, Concat, Sub/Div, then\n"+
			"LinearRegressor or a binary LinearClassifier with post_transform LOGISTIC) or\n"+
			"as the JSON form linnet import reads (numeric models only).",
			onnx.ExportIRVersion, onnx.ExportOpset, onnx.ExportMLOpset),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, _, err := model.ReadFile(args[0])
			if err != nil {
				return err
			}
			var b []byte
			switch format {
			case "onnx":
				b, err = onnx.Export(m)
			case "json":
				b, err = onnx.ExportJSON(m)
			default:
				return fmt.Errorf("--format %q: want onnx or json", format)
			}
			if err != nil {
				return err
			}
			if err := model.WriteFile(out, b); err != nil {
				return fmt.Errorf("write %q: %w", out, err)
			}
			fmt.Fprintf(e.stdout, "wrote %s: %s, %s model of %d features, %d bytes\n", out, format, m.Loss, len(m.Features), len(b))
			if m.Preprocessing != nil && format == "onnx" {
				for _, c := range m.Preprocessing.Columns {
					if c.FillCategory != "" {
						fmt.Fprintf(e.stderr, "note: ONNX has no fill category: a missing %q sets no feature there, where linnet takes %q\n", c.Name, c.FillCategory)
					}
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "output file (required)")
	c.Flags().StringVar(&format, "format", "onnx", "onnx or json")
	c.MarkFlagRequired("out")
	return c
}
