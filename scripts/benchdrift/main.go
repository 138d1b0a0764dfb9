// Command benchdrift measures linnet's drift detectors (package
// daemon/monitor) on synthetic streams, for scripts/bench-drift.sh:
//
//	go run ./scripts/benchdrift [-readings 10000000] [-trials 300] [-sweep]
//
// False alarms: alerts fired per million readings of a stationary stream
// of a 32-feature model (standard normal features, one alert per feature
// possible), of a one-hot column of 5 categories, and of a squared-loss
// stream (a chi-square variable with one degree of freedom). Detection
// delay: readings from the change to the alert, median and 95th percentile
// over -trials trials, for a mean shift of 0.5, 1 and 2 sd in one feature
// and a 20% rise of the mean loss; a trial that has not fired after
// -horizon readings counts as missed. The change starts at a random
// reading, so it falls anywhere in a window. -sweep tries other windows
// and thresholds (to choose the defaults).
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/linnet-edge/linnet/daemon/monitor"
	"github.com/linnet-edge/linnet/model"
)

func main() {
	readings := flag.Int("readings", 10_000_000, "readings per stationary stream")
	trials := flag.Int("trials", 300, "trials per detection delay")
	horizon := flag.Int("horizon", 50_000, "readings after a change before a trial counts as missed")
	sweep := flag.Bool("sweep", false, "also try other windows and thresholds")
	flag.Parse()
	b := bench{readings: *readings, trials: *trials, horizon: *horizon}
	cfg := monitor.DefaultConfig()
	fmt.Printf("defaults: window %d, mean shift %.2f sd, PSI %.2f, loss block %d, delta %.2f, lambda %.1f\n\n",
		cfg.Window, cfg.MeanShift, cfg.PSI, cfg.LossBlock, cfg.LossDelta, cfg.LossLambda)
	fmt.Println("| detector | window | threshold | false alarms / 1M readings | change | delay median | delay p95 | missed |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	configs := []monitor.Config{cfg}
	if *sweep {
		for _, w := range []int{64, 128, 256} {
			for _, t := range []float64{0.3, 0.4, 0.45, 0.5, 0.6} {
				c := cfg
				c.Window, c.MeanShift = w, t
				if c != cfg {
					configs = append(configs, c)
				}
			}
		}
	}
	for _, c := range configs {
		fa := b.featureFalseAlarms(c)
		for i, sd := range []float64{0.5, 1, 2} {
			d := b.featureDelay(c, sd)
			far := ""
			if i == 0 {
				far = fmt.Sprintf("%.2f", fa)
			}
			fmt.Printf("| feature, 32 | %d | %.2f sd | %s | +%.1f sd | %s |\n", c.Window, c.MeanShift, far, sd, d)
		}
	}
	c := cfg
	fmt.Printf("| category, 5 | %d | PSI %.2f | %.2f | 0.4 to 0.2 | %s |\n", c.Window, c.PSI, b.categoryFalseAlarms(c), b.categoryDelay(c))
	lossConfigs := []monitor.Config{cfg}
	if *sweep {
		for _, l := range []float64{3, 4, 6, 8} {
			for _, d := range []float64{0.05, 0.1} {
				c := cfg
				c.LossLambda, c.LossDelta = l, d
				if c != cfg {
					lossConfigs = append(lossConfigs, c)
				}
			}
		}
	}
	for _, c := range lossConfigs {
		fmt.Printf("| loss (Page-Hinkley) | %d | delta %.2f, lambda %.0f | %.2f | +20%% | %s |\n",
			c.LossBlock, c.LossDelta, c.LossLambda, b.lossFalseAlarms(c), b.lossDelay(c, 1.2))
	}
}

type bench struct{ readings, trials, horizon int }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// normalModel is n standard normal features, training mean 0 and sd 1.
func normalModel(n int) *model.Model {
	m := &model.Model{Loss: model.Squared, Scheme: model.F32}
	for i := range n {
		m.Features = append(m.Features, fmt.Sprintf("x%d", i))
		m.Mean = append(m.Mean, 0)
		m.Std = append(m.Std, 1)
		m.Weights = append(m.Weights, 1)
	}
	return m
}

func (b bench) featureFalseAlarms(c monitor.Config) float64 {
	m := normalModel(32)
	d := monitor.NewFeatureDrift("m", m, c)
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 32)
	fired := 0
	for range b.readings {
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		for _, a := range d.Observe(x, t0) {
			if a.Active {
				fired++
			}
		}
	}
	return float64(fired) / float64(b.readings) * 1e6
}

// delays runs trials: each feeds a random number of stationary readings
// (at least warm), then changed ones until step reports an alert.
func (b bench) delays(warm int, step func(r *rand.Rand, changed bool) bool) string {
	var ds []int
	missed := 0
	for t := range b.trials {
		r := rand.New(rand.NewPCG(uint64(t), 7))
		pre := warm + r.IntN(warm)
		for range pre {
			step(r, false)
		}
		k := 0
		for ; k < b.horizon; k++ {
			if step(r, true) {
				break
			}
		}
		if k == b.horizon {
			missed++
		} else {
			ds = append(ds, k+1)
		}
		step(nil, false) // reset
	}
	if len(ds) == 0 {
		return fmt.Sprintf("- | - | %d/%d", missed, b.trials)
	}
	slices.Sort(ds)
	return fmt.Sprintf("%d | %d | %d/%d", ds[len(ds)/2], ds[len(ds)*95/100], missed, b.trials)
}

func (b bench) featureDelay(c monitor.Config, sd float64) string {
	m := normalModel(32)
	var d *monitor.FeatureDrift
	x := make([]float32, 32)
	return b.delays(1000, func(r *rand.Rand, changed bool) bool {
		if r == nil || d == nil {
			d = monitor.NewFeatureDrift("m", m, c)
			if r == nil {
				return false
			}
		}
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		if changed {
			x[7] += float32(sd)
		}
		for _, a := range d.Observe(x, t0) {
			if a.Active && changed && a.Feature == "x7" {
				return true
			}
		}
		return false
	})
}

func categoryModel() *model.Model {
	cats := []string{"a", "b", "c", "d", "e"}
	freq := []float32{0.4, 0.25, 0.15, 0.1, 0.1}
	m := &model.Model{Loss: model.Squared, Scheme: model.F32,
		Preprocessing: &model.Preprocessing{Columns: []model.Column{{Name: "c", Kind: model.OneHot, Categories: cats}}}}
	for i, k := range cats {
		m.Features = append(m.Features, "c="+k)
		m.Mean = append(m.Mean, freq[i])
		m.Std = append(m.Std, 0.3)
		m.Weights = append(m.Weights, 1)
	}
	return m
}

func drawCategory(r *rand.Rand, x []float32, freq []float64) {
	clear(x)
	u := r.Float64()
	for k, f := range freq {
		if u < f {
			x[k] = 1
			return
		}
		u -= f
	}
}

var (
	catTrain   = []float64{0.4, 0.25, 0.15, 0.1, 0.1}
	catChanged = []float64{0.2, 0.35, 0.2, 0.15, 0.1}
)

func (b bench) categoryFalseAlarms(c monitor.Config) float64 {
	d := monitor.NewFeatureDrift("m", categoryModel(), c)
	r := rand.New(rand.NewPCG(2, 2))
	x := make([]float32, 5)
	fired := 0
	for range b.readings {
		drawCategory(r, x, catTrain)
		for _, a := range d.Observe(x, t0) {
			if a.Active {
				fired++
			}
		}
	}
	return float64(fired) / float64(b.readings) * 1e6
}

func (b bench) categoryDelay(c monitor.Config) string {
	m := categoryModel()
	var d *monitor.FeatureDrift
	x := make([]float32, 5)
	return b.delays(1000, func(r *rand.Rand, changed bool) bool {
		if r == nil || d == nil {
			d = monitor.NewFeatureDrift("m", m, c)
			if r == nil {
				return false
			}
		}
		f := catTrain
		if changed {
			f = catChanged
		}
		drawCategory(r, x, f)
		for _, a := range d.Observe(x, t0) {
			if a.Active && changed {
				return true
			}
		}
		return false
	})
}

func (b bench) lossFalseAlarms(c monitor.Config) float64 {
	l := monitor.NewLossDrift("m", "", c)
	r := rand.New(rand.NewPCG(3, 3))
	fired := 0
	for range b.readings {
		e := r.NormFloat64()
		if a, ok := l.Observe(e*e, t0); ok && a.Active {
			fired++
		}
	}
	return float64(fired) / float64(b.readings) * 1e6
}

func (b bench) lossDelay(c monitor.Config, rise float64) string {
	var l *monitor.LossDrift
	return b.delays(5000, func(r *rand.Rand, changed bool) bool {
		if r == nil || l == nil {
			l = monitor.NewLossDrift("m", "", c)
			if r == nil {
				return false
			}
		}
		e := r.NormFloat64()
		loss := e * e
		if changed {
			loss *= rise
		}
		a, ok := l.Observe(loss, t0)
		return ok && a.Active && changed
	})
}

func init() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: benchdrift [-readings N] [-trials N] [-horizon N] [-sweep]")
		flag.PrintDefaults()
	}
}
