package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/linnet-edge/linnet/model"
)

func init() { commands = append(commands, newTrainCmd) }

// trainReport is train's --json output; README.md promises rows_train,
// epochs, rows_per_sec, train, test and model{scheme, bytes}.
type trainReport struct {
	RowsTrain    int64              `json:"rows_train"`
	RowsTest     int64              `json:"rows_test"`
	Epochs       int                `json:"epochs"`
	BestEpoch    int                `json:"best_epoch"`
	StoppedEarly bool               `json:"stopped_early"`
	RowsPerSec   float64            `json:"rows_per_sec"`
	Seconds      float64            `json:"seconds"`
	Train        map[string]float64 `json:"train"`
	Test         map[string]float64 `json:"test,omitempty"`
	Model        trainModel         `json:"model"`
	Loss         []epochLoss        `json:"loss"`
}

type trainModel struct {
	File    string       `json:"file"`
	Scheme  model.Scheme `json:"scheme"`
	Bytes   int          `json:"bytes"`
	Version int64        `json:"version"`
	// Sizes is what the file would take with each scheme, for choosing one.
	Sizes map[model.Scheme]int `json:"sizes"`
}

type epochLoss struct {
	Epoch   int      `json:"epoch"`
	Train   float64  `json:"train"`
	Holdout *float64 `json:"holdout,omitempty"`
}

func newTrainCmd(e *env) *cobra.Command {
	var (
		data, target, test, out, plotDir  string
		loss, scheme, optimizer, schedule string
		holdout                           float64
		cfg                               model.TrainConfig
		version                           int64
		stream, drop, asJSON              bool
	)
	c := &cobra.Command{
		Use:   "train --data F.csv --target COL --out M.lnm",
		Short: "fit a linear or logistic model to a CSV file",
		Long: `train fits a model to the rows of a CSV file with a header line; every
column but the target is a feature. Features are standardized with statistics
of the training rows, which the model keeps, so raw sensor units need no
scaling. The default optimizer (adaptive) needs no tuning; the seed's
textbook run is

    linnet train --data houses.csv --target price_k --optimizer sgd --lr 0.01 \
        --batch-size 32 --epochs 100 --holdout 0.2 --patience -1 --out houses.lnm

--holdout keeps a seeded fraction of the rows out of training, for early
stopping and the test metrics; --test scores a separate file instead (both
may be given). With --epochs 1 (or --stream) the file is streamed, not held
in memory, so it may be larger than memory. Metrics are those of the model as
written (after --quantize). A progress bar shows on a terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := model.ParseScheme(scheme)
			if err != nil {
				return fmt.Errorf("--quantize: %w", err)
			}
			if !cmd.Flags().Changed("holdout") && test != "" {
				holdout = 0
			}
			cfg.Loss = model.Loss(loss)
			cfg.Optimizer = model.Optimizer(optimizer)
			cfg.Schedule = model.Schedule(schedule)
			cfg.Holdout = holdout
			cfg.Stream = stream || cfg.Epochs == 1
			f, err := os.Open(data)
			if err != nil {
				return err
			}
			defer f.Close()
			// A bar over the bytes read: every pass of a streamed run (the
			// statistics, each epoch, the scoring), or the one read that
			// loads the rows into memory.
			var in io.ReadSeeker = f
			passes := int64(1)
			if cfg.Stream {
				passes = int64(cfg.Epochs) + 2
			}
			var readBar *progressbar.ProgressBar
			if fi, err := f.Stat(); err == nil {
				readBar = newBar(e.stderr, fi.Size()*passes, "read", true)
			}
			if readBar != nil {
				in = &barReader{f, readBar}
			}
			r, err := model.NewCSVReader(in, model.CSVOptions{Target: target, DropNonFinite: drop, Binary: loss == string(model.Logistic)})
			if err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			var src model.Rewinder = r
			if !cfg.Stream {
				d, err := model.ReadDataset(r)
				if err != nil {
					return fmt.Errorf("%s: %w", data, err)
				}
				src = d
				finishBar(e.stderr, readBar)
			}
			var bar *progressbar.ProgressBar
			if !cfg.Stream {
				bar = newBar(e.stderr, int64(cfg.Epochs), "train", false)
			}
			var losses []epochLoss
			cfg.OnEpoch = func(es model.EpochStats) {
				el := epochLoss{Epoch: es.Epoch, Train: es.TrainLoss}
				if !math.IsNaN(es.HoldoutLoss) {
					h := es.HoldoutLoss
					el.Holdout = &h
				}
				losses = append(losses, el)
				if bar != nil {
					bar.Describe(fmt.Sprintf("train loss %.4g", es.TrainLoss))
					bar.Set(es.Epoch)
				}
			}
			m, rep, err := model.Train(ctx, src, cfg)
			finishBar(e.stderr, bar)
			if err != nil {
				return fmt.Errorf("train on %s: %w", data, err)
			}
			if version == 0 {
				version = time.Now().Unix()
			}
			m.Version = version
			m.Created = m.Created.Truncate(time.Second)
			q, err := m.Quantize(s)
			if err != nil {
				return err
			}
			// Score the model as written: quantized, through a Predictor.
			if err := src.Reset(); err != nil {
				return err
			}
			trainM, holdM, err := model.EvaluateSplit(ctx, q, src, cfg.Seed, cfg.Holdout)
			if cfg.Stream {
				finishBar(e.stderr, readBar)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			testM := holdM
			if test != "" {
				if testM, err = evaluateFile(ctx, q, test, target, drop); err != nil {
					return err
				}
			}
			addMetrics(q.Metrics, "train_", trainM.Map(q.Loss))
			if testM.Rows > 0 {
				addMetrics(q.Metrics, "test_", testM.Map(q.Loss))
			}
			file, err := q.MarshalBinary()
			if err != nil {
				return err
			}
			if err := model.WriteFile(out, file); err != nil {
				return fmt.Errorf("write %q: %w", out, err)
			}
			res := trainReport{
				RowsTrain: rep.RowsTrain, RowsTest: testM.Rows, Epochs: len(rep.Epochs), BestEpoch: rep.BestEpoch,
				StoppedEarly: rep.StoppedEarly, RowsPerSec: rep.RowsPerSec, Seconds: rep.Elapsed.Seconds(),
				Train: trainM.Map(q.Loss), Loss: losses,
				Model: trainModel{File: out, Scheme: s, Bytes: len(file), Version: q.Version, Sizes: map[model.Scheme]int{}},
			}
			if testM.Rows > 0 {
				res.Test = testM.Map(q.Loss)
			}
			for _, sc := range []model.Scheme{model.F32, model.Q8, model.Q4} {
				res.Model.Sizes[sc] = q.FileSize(sc)
			}
			if plotDir != "" {
				if err := os.MkdirAll(plotDir, 0o755); err != nil {
					return err
				}
				p := filepath.Join(plotDir, "loss.svg")
				if err := plotLoss(p, losses, q.Loss); err != nil {
					return fmt.Errorf("plot: %w", err)
				}
				if !asJSON {
					fmt.Fprintf(e.stdout, "loss curve: %s\n", p)
				}
			}
			if asJSON {
				return writeJSON(e.stdout, res)
			}
			printTrain(e.stdout, res, r.Dropped())
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&data, "data", "", "training CSV file with a header line (required)")
	fl.StringVar(&target, "target", "", "target column (required)")
	fl.StringVar(&test, "test", "", "CSV file to report test metrics on")
	fl.Float64Var(&holdout, "holdout", 0.2, "fraction of rows held out for early stopping and the test metrics; with --test the default is 0")
	fl.StringVar(&loss, "loss", "squared", "squared, huber or logistic (target 0 or 1)")
	fl.Float32Var(&cfg.Delta, "delta", 0, "Huber threshold in target units (default 1.345 target standard deviations; set it when outliers inflate those)")
	fl.StringVar(&scheme, "quantize", "f32", "weights of the written model: f32, q8 or q4")
	fl.StringVar(&optimizer, "optimizer", "adaptive", "adaptive (needs no tuning), sgd or adagrad")
	fl.Float32Var(&cfg.LR, "lr", 0, "learning rate (default 0.5 adaptive and adagrad, 0.01 sgd)")
	fl.StringVar(&schedule, "schedule", "constant", "sgd learning-rate schedule: constant or invscaling (lr / t^power-t)")
	fl.Float32Var(&cfg.PowerT, "power-t", 0.25, "invscaling exponent")
	fl.IntVar(&cfg.BatchSize, "batch-size", 32, "rows per step")
	fl.Float32Var(&cfg.L1, "l1", 0, "L1 penalty on standardized weights (proximal)")
	fl.Float32Var(&cfg.L2, "l2", 0, "L2 penalty on standardized weights")
	fl.IntVar(&cfg.Epochs, "epochs", 20, "passes over the data; 1 streams the file")
	fl.IntVar(&cfg.Patience, "patience", 3, "stop after this many epochs without holdout improvement; -1 never")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "seed for shuffling and the holdout split")
	fl.Int64Var(&version, "version", 0, "model version (default: now in Unix seconds)")
	fl.StringVar(&plotDir, "plot", "", "directory to write loss.svg, the loss per epoch, to")
	fl.StringVar(&out, "out", "", "model file to write (required)")
	fl.BoolVar(&stream, "stream", false, "read the file once per epoch instead of holding it in memory")
	fl.BoolVar(&drop, "drop-nonfinite", false, "drop rows with NaN, Inf or empty values instead of failing")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	for _, name := range []string{"data", "target", "out"} {
		c.MarkFlagRequired(name)
	}
	return c
}

func addMetrics(dst map[string]float64, prefix string, m map[string]float64) {
	for k, v := range m {
		if k != "rows" {
			dst[prefix+k] = v
		}
	}
}

// newBar returns a progress bar to max (bytes, or epochs) on w if w is a
// terminal, else nil: piped output and logs get no bar.
func newBar(w io.Writer, max int64, desc string, bytes bool) *progressbar.ProgressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || max <= 0 {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetItsString("epoch"))
	}
	return progressbar.NewOptions64(max, opts...)
}

// finishBar completes b, if any, and ends its line; call it once per bar.
func finishBar(w io.Writer, b *progressbar.ProgressBar) {
	if b == nil {
		return
	}
	if !b.IsFinished() {
		b.Finish()
	}
	fmt.Fprintln(w)
}

// barReader advances a progress bar by the bytes read through it.
type barReader struct {
	f   *os.File
	bar *progressbar.ProgressBar
}

func (r *barReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.bar.Add(n)
	return n, err
}

func (r *barReader) Seek(off int64, whence int) (int64, error) { return r.f.Seek(off, whence) }

func printTrain(w io.Writer, r trainReport, dropped int64) {
	fmt.Fprintf(w, "trained on %d rows, %d epochs (best %d", r.RowsTrain, r.Epochs, r.BestEpoch)
	if r.StoppedEarly {
		fmt.Fprint(w, ", stopped early")
	}
	fmt.Fprintf(w, "), %.0f rows/s, %.2fs\n", r.RowsPerSec, r.Seconds)
	if dropped > 0 {
		fmt.Fprintf(w, "dropped %d rows with non-finite values\n", dropped)
	}
	fmt.Fprintf(w, "train  %s\n", formatMetrics(r.Train))
	if r.Test != nil {
		fmt.Fprintf(w, "test   %s\n", formatMetrics(r.Test))
	}
	fmt.Fprintf(w, "wrote %s: %s, %d bytes, version %d (f32 %d, q8 %d, q4 %d bytes)\n",
		r.Model.File, r.Model.Scheme, r.Model.Bytes, r.Model.Version,
		r.Model.Sizes[model.F32], r.Model.Sizes[model.Q8], r.Model.Sizes[model.Q4])
}

func formatMetrics(m map[string]float64) string {
	s := fmt.Sprintf("rows %.0f", m["rows"])
	for _, k := range []string{"rmse", "mae", "r2", "accuracy", "logloss", "auc"} {
		if v, ok := m[k]; ok {
			s += fmt.Sprintf("  %s %.5g", k, v)
		}
	}
	return s
}
