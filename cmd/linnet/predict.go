package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
)

func init() { commands = append(commands, newPredictCmd) }

func newPredictCmd(e *env) *cobra.Command {
	var modelPath, data string
	var explain bool
	var top int
	c := &cobra.Command{
		Use:   "predict --model M.lnm --data F.csv [--explain [--top K]]",
		Short: "print one prediction per row of a CSV file, as CSV",
		Long: "predict reads the model's inputs by name from each row (other columns, the\n" +
			"target included, are ignored), preprocesses them as in training (missing values\n" +
			"imputed, categories encoded) and prints a CSV with a header: prediction, and\n" +
			"for a logistic model, whose prediction is P(class 1), also class (0 or 1).\n\n" +
			"With --explain it prints one JSON object per row instead:\n" +
			"  {\"row\":1,\"prediction\":..,\"bias\":..,\"score\":..,\"explain\":[{\"feature\",\"value\",\"contribution\"},...]}\n" +
			"with the --top largest contributions (weight x standardized value; features\n" +
			"after preprocessing, one-hot ones named column=category). bias plus every\n" +
			"feature's contribution is score: the prediction, or for a logistic model the\n" +
			"logit, log(p/(1-p)); logistic rows also carry class.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, _, err := model.ReadFile(modelPath)
			if err != nil {
				return err
			}
			f, err := os.Open(data)
			if err != nil {
				return err
			}
			defer f.Close()
			r, err := model.OpenModelRows(cmd.Context(), f, m, "", false)
			if err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			defer r.Close()
			w := bufio.NewWriterSize(e.stdout, 1<<16)
			write := predictCSV
			if explain {
				write = func(w io.Writer, m *model.Model, r model.RowSource) error { return predictExplain(w, m, r, top) }
			}
			if err := write(w, m, r); err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			if imputed, unseen, _ := r.Counts(); imputed+unseen > 0 {
				fmt.Fprintf(e.stderr, "imputed %d missing values; %d categories were unseen in training\n", imputed, unseen)
			}
			return w.Flush()
		},
	}
	c.Flags().StringVar(&modelPath, "model", "", "model file (required)")
	c.Flags().StringVar(&data, "data", "", "CSV file with the model's features (required)")
	c.Flags().BoolVar(&explain, "explain", false, "print each row's top contributions as JSON lines")
	c.Flags().IntVar(&top, "top", 5, "contributions per row with --explain (0: all)")
	c.MarkFlagRequired("model")
	c.MarkFlagRequired("data")
	return c
}

func predictCSV(w io.Writer, m *model.Model, r model.RowSource) error {
	p := model.NewPredictor(m)
	logistic := m.Loss == model.Logistic
	if logistic {
		io.WriteString(w, "prediction,class\n")
	} else {
		io.WriteString(w, "prediction\n")
	}
	n := len(m.Features)
	const chunk = 256
	rows := make([]float32, chunk*n)
	pred := make([]float32, chunk)
	var line []byte
	for {
		k := 0
		var err error
		for ; k < chunk; k++ {
			if _, err = r.Next(rows[k*n : (k+1)*n]); err != nil {
				break
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		p.PredictBatch(pred[:k], rows[:k*n])
		for _, v := range pred[:k] {
			line = strconv.AppendFloat(line[:0], float64(v), 'g', -1, 32)
			if logistic {
				if v >= 0.5 {
					line = append(line, ",1"...)
				} else {
					line = append(line, ",0"...)
				}
			}
			line = append(line, '\n')
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
		}
		if err != nil {
			return nil
		}
	}
}

// explainRow is one line of predict --explain.
type explainRow struct {
	Row        int     `json:"row"`
	Prediction float32 `json:"prediction"`
	Class      *int    `json:"class,omitempty"`
	model.Explanation
}

func predictExplain(w io.Writer, m *model.Model, r model.RowSource, top int) error {
	p := model.NewPredictor(m)
	enc := json.NewEncoder(w)
	x := make([]float32, len(m.Features))
	for row := 1; ; row++ {
		if _, err := r.Next(x); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		e, err := m.Explain(x, top)
		if err != nil {
			return fmt.Errorf("row %d: %w", row, err)
		}
		out := explainRow{Row: row, Prediction: p.Predict(x), Explanation: e}
		if m.Loss == model.Logistic {
			class := 0
			if out.Prediction >= 0.5 {
				class = 1
			}
			out.Class = &class
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
}
