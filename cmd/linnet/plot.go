package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
)

func init() { commands = append(commands, newPlotCmd) }

// maxScatter bounds the points drawn in a scatter: more only blacken it.
const maxScatter = 5000

func newPlotCmd(e *env) *cobra.Command {
	var modelPath, data, target, out string
	c := &cobra.Command{
		Use:   "plot --model M.lnm --data F.csv --target COL --out P.svg",
		Short: "plot predicted against actual, with the residuals' histogram (SVG)",
		Long: "plot draws, side by side, the model's predictions against the actual targets with\n" +
			"the line y = x, and a histogram of the residuals (actual - predicted). For a\n" +
			"logistic model the left panel is the calibration curve: mean predicted probability\n" +
			"against the observed frequency of class 1, in ten bins. The image is SVG: open it\n" +
			"in a browser.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPlotPath(out); err != nil {
				return err
			}
			m, _, err := model.ReadFile(modelPath)
			if err != nil {
				return err
			}
			if target == "" {
				target = m.Target
			}
			f, err := os.Open(data)
			if err != nil {
				return err
			}
			defer f.Close()
			r, err := model.OpenModelRows(cmd.Context(), f, m, target, false)
			if err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			defer r.Close()
			pred, actual, err := predictAll(m, r)
			if err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			if len(pred) == 0 {
				return fmt.Errorf("%s: no rows", data)
			}
			if err := plotFit(out, m, pred, actual); err != nil {
				return fmt.Errorf("plot: %w", err)
			}
			fmt.Fprintf(e.stdout, "wrote %s (%d rows)\n", out, len(pred))
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&modelPath, "model", "", "model file (required)")
	fl.StringVar(&data, "data", "", "CSV file with the model's features and the target (required)")
	fl.StringVar(&target, "target", "", "target column (default: the model's target)")
	fl.StringVar(&out, "out", "", "SVG file to write, named .svg (required)")
	for _, name := range []string{"model", "data", "out"} {
		c.MarkFlagRequired(name)
	}
	return c
}

func predictAll(m *model.Model, r model.RowSource) (pred, actual []float64, err error) {
	p := model.NewPredictor(m)
	x := make([]float32, len(m.Features))
	for {
		y, err := r.Next(x)
		if errors.Is(err, io.EOF) {
			return pred, actual, nil
		}
		if err != nil {
			return nil, nil, err
		}
		pred = append(pred, float64(p.Predict(x)))
		actual = append(actual, float64(y))
	}
}

const (
	pointColor = "#1f77b4"
	lineColor  = "#d62728"
	barColor   = "#1f77b4"
	curve2     = "#ff7f0e"
)

// checkPlotPath refuses a file name the plot would not match: the plots
// are SVG, which every browser opens.
func checkPlotPath(path string) error {
	if ext := filepath.Ext(path); !strings.EqualFold(ext, ".svg") {
		return fmt.Errorf("--out %s: plots are SVG images (open them in a browser); name the file .svg", path)
	}
	return nil
}

// plotFit writes the two-panel fit plot to path.
func plotFit(path string, m *model.Model, pred, actual []float64) error {
	left := newPanel()
	if m.Loss == model.Logistic {
		calibration(left, pred, actual)
	} else {
		scatter(left, m, pred, actual)
	}
	right := newPanel()
	res := make([]float64, len(pred))
	var sum, sum2 float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range pred {
		res[i] = actual[i] - pred[i]
		sum += res[i]
		sum2 += res[i] * res[i]
		lo, hi = math.Min(lo, res[i]), math.Max(hi, res[i])
	}
	n := float64(len(res))
	right.hist = histogram(res, lo, hi, int(math.Min(60, math.Max(10, math.Sqrt(n)))))
	right.title = fmt.Sprintf("residuals: mean %.3g, RMSE %.4g", sum/n, math.Sqrt(sum2/n))
	right.xLabel = "actual - predicted"
	right.yLabel = "rows"
	right.yInt = true
	right.yMin = 0
	return model.WriteFile(path, renderSVG(1152, 480, left, right))
}

// histogram counts values in bins equal bins from lo to hi.
func histogram(values []float64, lo, hi float64, bins int) *hist {
	if !(hi > lo) {
		lo, hi = lo-0.5, hi+0.5
	}
	h := &hist{edges: make([]float64, bins+1), counts: make([]float64, bins), color: barColor}
	for i := range h.edges {
		h.edges[i] = lo + (hi-lo)*float64(i)/float64(bins)
	}
	for _, v := range values {
		b := int((v - lo) / (hi - lo) * float64(bins))
		h.counts[min(bins-1, max(0, b))]++
	}
	return h
}

func scatter(p *panel, m *model.Model, pred, actual []float64) {
	step := max(1, len(pred)/maxScatter)
	pts := make([]xy, 0, len(pred)/step+1)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := 0; i < len(pred); i += step {
		pts = append(pts, xy{X: actual[i], Y: pred[i]})
	}
	for i := range pred {
		lo = math.Min(lo, math.Min(pred[i], actual[i]))
		hi = math.Max(hi, math.Max(pred[i], actual[i]))
	}
	p.series = []series{
		{name: "rows", pts: pts, color: pointColor, marker: "circle", radius: 2, opacity: 0.35},
		{name: "y = x", pts: []xy{{lo, lo}, {hi, hi}}, color: lineColor, line: true},
	}
	p.grid = true
	// Bottom right: the points run along the diagonal, away from it.
	p.xMin, p.xMax, p.yMin, p.yMax = lo, hi, lo, hi
	title := "predicted vs actual"
	if m.Target != "" {
		title += " " + m.Target
	}
	if step > 1 {
		title += fmt.Sprintf(" (1 row in %d of %d)", step, len(pred))
	}
	p.title = title
	p.xLabel = "actual"
	p.yLabel = "predicted"
}

func calibration(p *panel, pred, actual []float64) {
	const nb = 10
	var sp, sy, cnt [nb]float64
	for i, v := range pred {
		b := max(0, min(nb-1, int(v*nb)))
		sp[b] += v
		sy[b] += actual[i]
		cnt[b]++
	}
	var pts []xy
	for b := range nb {
		if cnt[b] > 0 {
			pts = append(pts, xy{X: sp[b] / cnt[b], Y: sy[b] / cnt[b]})
		}
	}
	p.series = []series{
		{name: "model", pts: pts, color: barColor, line: true, marker: "circle", radius: 3},
		{name: "y = x (perfect calibration)", pts: []xy{{0, 0}, {1, 1}}, color: lineColor, line: true, dashed: true},
	}
	p.grid = true
	// Bottom right: the points run along the diagonal, away from it.
	p.xMin, p.xMax, p.yMin, p.yMax = 0, 1, 0, 1
	p.title = "calibration: predicted P(1) vs observed frequency"
	p.xLabel = "mean predicted probability"
	p.yLabel = "observed frequency of class 1"
}

// plotLoss writes the loss-per-epoch curve (training and holdout) to path,
// on a log scale when every loss is positive.
func plotLoss(path string, losses []epochLoss, loss model.Loss) error {
	p := newPanel()
	var tr, ho []xy
	positive := true
	for _, l := range losses {
		tr = append(tr, xy{X: float64(l.Epoch), Y: l.Train})
		positive = positive && l.Train > 0
		if l.Holdout != nil {
			ho = append(ho, xy{X: float64(l.Epoch), Y: *l.Holdout})
			positive = positive && *l.Holdout > 0
		}
	}
	if len(tr) == 0 {
		return errors.New("no epochs")
	}
	p.series = []series{{name: "train (during the epoch)", pts: tr, color: barColor, line: true, marker: "circle", radius: 2.5}}
	if len(ho) > 0 {
		p.series = append(p.series, series{name: "holdout (after the epoch)", pts: ho, color: curve2, line: true, marker: "square", radius: 2.5})
	}
	p.grid = true
	p.legendTop = true
	p.logY = positive
	p.title = "loss per epoch"
	p.xLabel = "epoch"
	p.yLabel = map[model.Loss]string{model.Squared: "mean squared error", model.Huber: "mean Huber loss", model.Logistic: "mean log loss"}[loss]
	p.xMin = 1
	p.xInt = true
	return model.WriteFile(path, renderSVG(768, 480, p))
}
