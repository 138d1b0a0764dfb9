package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
)

func init() { commands = append(commands, newEvalCmd) }

func newEvalCmd(e *env) *cobra.Command {
	var (
		modelPath, data, target string
		drop, asJSON            bool
	)
	c := &cobra.Command{
		Use:   "eval --model M.lnm --data F.csv",
		Short: "score a model on a CSV file",
		Long: "eval scores a model on the rows of a CSV file, computing as the daemon serves it.\n" +
			"Regression prints rows, rmse, mae and r2; logistic rows, accuracy (threshold 0.5),\n" +
			"logloss and auc. Columns are matched to the model's inputs by name and preprocessed\n" +
			"as in training (missing values imputed, categories encoded).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, _, err := model.ReadFile(modelPath)
			if err != nil {
				return err
			}
			met, err := evaluateFile(cmd.Context(), m, data, target, drop)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, met.Map(m.Loss))
			}
			fmt.Fprintln(e.stdout, formatMetrics(met.Map(m.Loss)))
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&modelPath, "model", "", "model file (required)")
	fl.StringVar(&data, "data", "", "CSV file with the model's features and the target (required)")
	fl.StringVar(&target, "target", "", "target column (default: the model's target)")
	fl.BoolVar(&drop, "drop-nonfinite", false, "drop rows with a missing value instead of imputing it")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	c.MarkFlagRequired("model")
	c.MarkFlagRequired("data")
	return c
}

// evaluateFile scores m on a CSV file, streaming it.
func evaluateFile(ctx context.Context, m *model.Model, path, target string, drop bool) (model.Metrics, error) {
	if target == "" {
		target = m.Target
	}
	f, err := os.Open(path)
	if err != nil {
		return model.Metrics{}, err
	}
	defer f.Close()
	r, err := model.OpenModelRows(ctx, f, m, target, drop)
	if err != nil {
		return model.Metrics{}, fmt.Errorf("%s: %w", path, err)
	}
	defer r.Close()
	met, err := model.Evaluate(ctx, m, r)
	if err != nil {
		return met, fmt.Errorf("%s: %w", path, err)
	}
	return met, nil
}
