package main

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/linnet-edge/linnet/model"
)

func init() { commands = append(commands, newPlotCmd) }

// maxScatter bounds the points drawn in a scatter: more only blacken it.
const maxScatter = 5000

func newPlotCmd(e *env) *cobra.Command {
	var modelPath, data, target, out string
	c := &cobra.Command{
		Use:   "plot --model M.lnm --data F.csv --target COL --out P.png",
		Short: "plot predicted against actual, with the residuals' histogram (PNG)",
		Long: "plot draws, side by side, the model's predictions against the actual targets with\n" +
			"the line y = x, and a histogram of the residuals (actual - predicted). For a\n" +
			"logistic model the left panel is the calibration curve: mean predicted probability\n" +
			"against the observed frequency of class 1, in ten bins.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	fl.StringVar(&out, "out", "", "PNG file to write (required)")
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

var (
	pointColor = color.NRGBA{R: 31, G: 119, B: 180, A: 90} // not premultiplied
	lineColor  = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	barColor   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	curve2     = color.RGBA{R: 255, G: 127, B: 14, A: 255}
)

// plotFit writes the two-panel fit plot to path.
func plotFit(path string, m *model.Model, pred, actual []float64) error {
	left := plot.New()
	if m.Loss == model.Logistic {
		if err := calibration(left, pred, actual); err != nil {
			return err
		}
	} else if err := scatter(left, m, pred, actual); err != nil {
		return err
	}
	right := plot.New()
	res := make(plotter.Values, len(pred))
	var sum, sum2 float64
	for i := range pred {
		res[i] = actual[i] - pred[i]
		sum += res[i]
		sum2 += res[i] * res[i]
	}
	n := float64(len(res))
	bins := int(math.Min(60, math.Max(10, math.Sqrt(n))))
	h, err := plotter.NewHist(res, bins)
	if err != nil {
		return err
	}
	h.FillColor = barColor
	h.LineStyle.Width = 0
	right.Add(h)
	right.Title.Text = fmt.Sprintf("residuals: mean %.3g, RMSE %.4g", sum/n, math.Sqrt(sum2/n))
	right.X.Label.Text = "actual - predicted"
	right.Y.Label.Text = "rows"
	right.Y.Tick.Marker = integerTicks{}
	return savePanels(path, []*plot.Plot{left, right}, 12*vg.Inch, 5*vg.Inch)
}

func scatter(p *plot.Plot, m *model.Model, pred, actual []float64) error {
	step := max(1, len(pred)/maxScatter)
	pts := make(plotter.XYs, 0, len(pred)/step+1)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := 0; i < len(pred); i += step {
		pts = append(pts, plotter.XY{X: actual[i], Y: pred[i]})
	}
	for i := range pred {
		lo = math.Min(lo, math.Min(pred[i], actual[i]))
		hi = math.Max(hi, math.Max(pred[i], actual[i]))
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	s.GlyphStyle.Color = pointColor
	s.GlyphStyle.Radius = vg.Points(1.6)
	s.GlyphStyle.Shape = draw.CircleGlyph{}
	line, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
	if err != nil {
		return err
	}
	line.Color = lineColor
	line.Width = vg.Points(1.5)
	p.Add(plotter.NewGrid(), s, line)
	p.Legend.Add("rows", s)
	p.Legend.Add("y = x", line)
	// Bottom right: the points run along the diagonal, away from it.
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo, hi, lo, hi
	title := "predicted vs actual"
	if m.Target != "" {
		title += " " + m.Target
	}
	if step > 1 {
		title += fmt.Sprintf(" (1 row in %d of %d)", step, len(pred))
	}
	p.Title.Text = title
	p.X.Label.Text = "actual"
	p.Y.Label.Text = "predicted"
	return nil
}

func calibration(p *plot.Plot, pred, actual []float64) error {
	const nb = 10
	var sp, sy, cnt [nb]float64
	for i, v := range pred {
		b := min(nb-1, int(v*nb))
		sp[b] += v
		sy[b] += actual[i]
		cnt[b]++
	}
	var pts plotter.XYs
	for b := range nb {
		if cnt[b] > 0 {
			pts = append(pts, plotter.XY{X: sp[b] / cnt[b], Y: sy[b] / cnt[b]})
		}
	}
	lp, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	lp.Color, s.Color = barColor, barColor
	s.Shape = draw.CircleGlyph{}
	line, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return err
	}
	line.Color = lineColor
	line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(plotter.NewGrid(), lp, s, line)
	p.Legend.Add("model", lp, s)
	p.Legend.Add("y = x (perfect calibration)", line)
	// Bottom right: the points run along the diagonal, away from it.
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.Title.Text = "calibration: predicted P(1) vs observed frequency"
	p.X.Label.Text = "mean predicted probability"
	p.Y.Label.Text = "observed frequency of class 1"
	return nil
}

// plotLoss writes the loss-per-epoch curve (training and holdout) to path,
// on a log scale when every loss is positive.
func plotLoss(path string, losses []epochLoss, loss model.Loss) error {
	p := plot.New()
	var tr, ho plotter.XYs
	positive := true
	for _, l := range losses {
		tr = append(tr, plotter.XY{X: float64(l.Epoch), Y: l.Train})
		positive = positive && l.Train > 0
		if l.Holdout != nil {
			ho = append(ho, plotter.XY{X: float64(l.Epoch), Y: *l.Holdout})
			positive = positive && *l.Holdout > 0
		}
	}
	if len(tr) == 0 {
		return errors.New("no epochs")
	}
	lt, st, err := plotter.NewLinePoints(tr)
	if err != nil {
		return err
	}
	lt.Color, st.Color = barColor, barColor
	p.Add(plotter.NewGrid(), lt, st)
	p.Legend.Add("train (during the epoch)", lt, st)
	if len(ho) > 0 {
		lh, sh, err := plotter.NewLinePoints(ho)
		if err != nil {
			return err
		}
		lh.Color, sh.Color = curve2, curve2
		sh.Shape = draw.BoxGlyph{}
		p.Add(lh, sh)
		p.Legend.Add("holdout (after the epoch)", lh, sh)
	}
	p.Legend.Top = true
	if positive {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	name := map[model.Loss]string{model.Squared: "mean squared error", model.Huber: "mean Huber loss", model.Logistic: "mean log loss"}[loss]
	p.Title.Text = "loss per epoch"
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = name
	p.X.Min = 1
	p.X.Tick.Marker = integerTicks{}
	return savePanels(path, []*plot.Plot{p}, 8*vg.Inch, 5*vg.Inch)
}

// logTicks labels a log axis with powers of ten when it spans a decade or
// more, and with ordinary ticks when it does not (LogTicks would label
// nothing).
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if hi >= 10*lo {
		return plot.LogTicks{Prec: -1}.Ticks(lo, hi)
	}
	return plot.DefaultTicks{}.Ticks(lo, hi)
}

// integerTicks puts ticks on whole numbers only.
type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	var t []plot.Tick
	for _, tk := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if tk.Value == math.Trunc(tk.Value) {
			if tk.Label != "" {
				tk.Label = strconv.FormatFloat(tk.Value, 'f', -1, 64)
			}
			t = append(t, tk)
		}
	}
	return t
}

// savePanels draws plots side by side into one PNG and writes it
// atomically.
func savePanels(path string, plots []*plot.Plot, w, h vg.Length) error {
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	dc := draw.New(img)
	// A white background: a transparent PNG is unreadable in dark viewers.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	t := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 8, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 5}
	cs := plot.Align([][]*plot.Plot{plots}, t, dc)
	for i, p := range plots {
		p.Draw(cs[0][i])
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return err
	}
	return model.WriteFile(path, buf.Bytes())
}
