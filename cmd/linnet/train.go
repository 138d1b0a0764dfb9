package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
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
	RowsTrain    int64              `json:"rows_train"` // rows the written model was fitted on
	RowsHoldout  int64              `json:"rows_holdout"`
	RowsTest     int64              `json:"rows_test"`
	RowsDropped  int64              `json:"rows_dropped"`
	Solver       string             `json:"solver"`
	L2           float64            `json:"l2"`
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
	Width   int          `json:"width"`  // features, after one-hot encoding
	Inputs  []string     `json:"inputs"` // the columns a reading gives
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
		solver, l2, missing               string
		features, ignore, text            []string
		holdout                           float64
		cfg                               model.TrainConfig
		prep                              model.PrepOptions
		hashBits                          uint8
		version                           int64
		stream, drop, asJSON              bool
	)
	c := &cobra.Command{
		Use:   "train --data F.csv --target COL --out M.lnm",
		Short: "fit a linear or logistic model to a CSV file",
		Long: `train fits a model to the rows of a CSV file with a header line. The
delimiter (comma, semicolon or tab) is detected; quoted fields may hold it.
Every column but the target is an input unless --features lists the inputs or
--ignore leaves some out (timestamps, ids). A column holding text is a
category, one-hot encoded over the training values (a value unseen in training
sets none) or, with --hash-bits, hashed when it has more than
--max-categories values; a text column is never read as a number. Missing
values ("", NA, NaN, null) are imputed with the training mean or the most
frequent category (--missing error refuses them). The model keeps all of it,
and eval, predict, plot and the daemon apply it the same way. Features are
standardized with statistics the model keeps too.

By default the model is solved exactly: squared loss from XᵀX and Xᵀy with the
ridge chosen by generalized cross-validation (--l2 auto), logistic loss by
Newton's method (ridge by approximate leave-one-out log loss), Huber loss by
reweighted least squares; q8 and q4 weights are rounded so that the others
make up for each rounding error. --optimizer (adaptive,
sgd, adagrad) trains by stochastic gradient instead, as the daemon learns
online; the seed's textbook run is

    linnet train --data houses.csv --target price_k --optimizer sgd --lr 0.01 \
        --batch-size 32 --epochs 100 --holdout 0.2 --patience -1 --out houses.lnm

--holdout keeps a seeded fraction of the rows aside to measure a model fitted
without them (the test metrics, and early stopping for SGD); the model written
is then fitted on every row, so the holdout never costs it data. --test scores
a separate file instead (both may be given). --stream reads the file once per
pass instead of holding it in memory (squared loss stays exact; the other
losses train by SGD). Metrics are those of the model as written (after
--quantize). A progress bar shows on a terminal.`,
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
			if prep.Missing, err = model.ParseMissingPolicy(missing); err != nil {
				return fmt.Errorf("--missing: %w", err)
			}
			prep.HashBits = hashBits
			cfg.Loss = model.Loss(loss)
			cfg.Optimizer = model.Optimizer(optimizer)
			cfg.Schedule = model.Schedule(schedule)
			cfg.Holdout = holdout
			cfg.Refit = true
			cfg.Scheme = s
			switch {
			case solver == "" && optimizer != "", solver == "sgd":
				cfg.Solver = model.SolverSGD
			case solver == "" || solver == "exact":
				cfg.Solver = model.SolverExact
			default:
				return fmt.Errorf("--solver %q: want exact or sgd", solver)
			}
			if l2 == "auto" {
				cfg.L2Auto = cfg.Solver == model.SolverExact
			} else {
				v, err := strconv.ParseFloat(l2, 32)
				if err != nil || v < 0 {
					return fmt.Errorf("--l2 %q: want auto or a number >= 0", l2)
				}
				cfg.L2 = float32(v)
			}
			cfg.Stream = stream || (cfg.Solver == model.SolverSGD && cfg.Epochs == 1)
			f, err := os.Open(data)
			if err != nil {
				return err
			}
			defer f.Close()
			var size int64
			if fi, err := f.Stat(); err == nil {
				size = fi.Size()
			}
			// A bar over the bytes read: every pass of a streamed run, or
			// the one read that loads the rows into memory.
			var in io.ReadSeeker = f
			passes := int64(1)
			if cfg.Stream {
				passes = int64(cfg.Epochs) + 3
				if cfg.Solver == model.SolverExact {
					passes = 3 // statistics, the grams, the scoring
				}
			}
			readBar := newBar(e.stderr, size*passes, "read", true)
			if readBar != nil {
				in = &barReader{f, readBar}
			}
			topt := model.TableOptions{Target: target, Columns: features, Ignore: ignore, Text: text,
				Binary: loss == string(model.Logistic), DropMissing: drop, RejectMissing: prep.Missing == model.MissingError}
			tr, err := model.OpenTable(in, topt)
			if err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			var (
				src     model.Rewinder
				pre     *model.Preprocessing
				stats   []model.ColumnStats
				ystats  model.ColumnStats
				dropped int64
			)
			if !cfg.Stream {
				tbl, err := model.LoadTable(ctx, tr, size)
				if err != nil {
					return fmt.Errorf("%s: %w", data, err)
				}
				stats, ystats, dropped = tbl.Stats, model.TargetStats(tbl.Y), tbl.Dropped
				if pre, err = model.BuildPreprocessing(stats, prep); err != nil {
					return fmt.Errorf("%s: %w", data, err)
				}
				ds, err := tbl.Dataset(pre)
				if err != nil {
					return fmt.Errorf("%s: %w", data, err)
				}
				src = ds
				finishBar(e.stderr, readBar)
			} else {
				if stats, ystats, _, dropped, err = model.ScanStats(ctx, tr); err != nil {
					return fmt.Errorf("%s: %w", data, err)
				}
				if pre, err = model.BuildPreprocessing(stats, prep); err != nil {
					return fmt.Errorf("%s: %w", data, err)
				}
				if _, err := in.Seek(0, io.SeekStart); err != nil {
					return err
				}
				skel := &model.Model{Features: pre.FeatureNames(), Preprocessing: pre}
				rows, err := model.OpenModelRows(ctx, in, skel, target, drop)
				if err != nil {
					return fmt.Errorf("%s: %w", data, err)
				}
				defer rows.Close()
				src = rows
			}
			var bar *progressbar.ProgressBar
			if !cfg.Stream && cfg.Solver == model.SolverSGD {
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
				version = model.DefaultVersion()
			}
			// The written model and the one that measures the holdout
			// carry the same preprocessing and scheme.
			var q, hq *model.Model
			for _, p := range []struct {
				in  *model.Model
				out **model.Model
			}{{m, &q}, {rep.HoldoutModel, &hq}} {
				if p.in == nil {
					continue
				}
				p.in.SetPreprocessing(pre, stats, ystats)
				p.in.Version = version
				p.in.Created = p.in.Created.Truncate(time.Second)
				if *p.out, err = p.in.Quantize(s); err != nil {
					return err
				}
			}
			// Score the model as written: quantized, through a Predictor.
			if err := src.Reset(); err != nil {
				return err
			}
			trainM, holdM, err := model.EvaluateHeldOut(ctx, q, hq, src, cfg.Seed, cfg.Holdout)
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
				RowsTrain: rep.RowsTrain, RowsHoldout: rep.RowsHoldout, RowsTest: testM.Rows, RowsDropped: dropped,
				Solver: rep.Solver, L2: q.Metrics["l2"],
				Epochs: len(rep.Epochs), BestEpoch: rep.BestEpoch,
				StoppedEarly: rep.StoppedEarly, RowsPerSec: rep.RowsPerSec, Seconds: rep.Elapsed.Seconds(),
				Train: trainM.Map(q.Loss), Loss: losses,
				Model: trainModel{File: out, Scheme: s, Bytes: len(file), Version: q.Version, Width: len(q.Features),
					Inputs: pre.Inputs(), Sizes: map[model.Scheme]int{}},
			}
			if testM.Rows > 0 {
				res.Test = testM.Map(q.Loss)
			}
			for _, sc := range []model.Scheme{model.F32, model.Q8, model.Q4} {
				res.Model.Sizes[sc] = q.FileSize(sc)
			}
			if plotDir != "" && len(losses) > 0 {
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
			printTrain(e.stdout, res)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&data, "data", "", "training CSV file with a header line (required)")
	fl.StringVar(&target, "target", "", "target column (required)")
	fl.StringVar(&test, "test", "", "CSV file to report test metrics on")
	fl.StringSliceVar(&features, "features", nil, "input columns, in this order (default: every column but the target and --ignore)")
	fl.StringSliceVar(&ignore, "ignore", nil, "columns to leave out (timestamps, ids)")
	fl.StringSliceVar(&text, "text", nil, "columns to read as categories even though they hold numbers")
	fl.Uint8Var(&hashBits, "hash-bits", 0, "hash text columns with more than --max-categories values into 2^B features (0: such a column is an error)")
	fl.IntVar(&prep.MaxCategories, "max-categories", 100, "most distinct values a text column may have to be one-hot encoded")
	fl.StringVar(&missing, "missing", "impute", "missing values: impute (training mean / most frequent category) or error; stored in the model")
	fl.BoolVar(&prep.Indicators, "missing-indicator", false, "add a 0/1 feature per column that had missing values: was the value missing")
	fl.Float64Var(&holdout, "holdout", 0.2, "fraction of rows held out to measure a model fitted without them (and early stopping for SGD); with --test the default is 0")
	fl.StringVar(&loss, "loss", "squared", "squared, huber or logistic (target 0 or 1)")
	fl.Float32Var(&cfg.Delta, "delta", 0, "Huber threshold in target units (default 1.345 robust residual scales; SGD: 1.345 target standard deviations)")
	fl.StringVar(&scheme, "quantize", "f32", "weights of the written model: f32, q8 or q4")
	fl.StringVar(&solver, "solver", "", "exact (default) or sgd (the default when --optimizer is given)")
	fl.StringVar(&optimizer, "optimizer", "", "train by stochastic gradient with adaptive (needs no tuning), sgd or adagrad")
	fl.Float32Var(&cfg.LR, "lr", 0, "learning rate (default 0.5 adaptive and adagrad, 0.01 sgd)")
	fl.StringVar(&schedule, "schedule", "constant", "sgd learning-rate schedule: constant or invscaling (lr / t^power-t)")
	fl.Float32Var(&cfg.PowerT, "power-t", 0.25, "invscaling exponent")
	fl.IntVar(&cfg.BatchSize, "batch-size", 32, "rows per step (SGD)")
	fl.Float32Var(&cfg.L1, "l1", 0, "L1 penalty on standardized weights (SGD, proximal)")
	fl.StringVar(&l2, "l2", "auto", "L2 penalty per row on standardized weights; auto: chosen by generalized cross-validation (squared) or approximate leave-one-out log loss (logistic); 0 for SGD")
	fl.IntVar(&cfg.Epochs, "epochs", 20, "passes over the data (SGD); 1 streams the file")
	fl.IntVar(&cfg.Patience, "patience", 3, "stop after this many epochs without holdout improvement (SGD); -1 never")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "seed for shuffling and the holdout split")
	fl.Int64Var(&version, "version", 0, "model version (default: now in Unix milliseconds x 1000 plus a random tie-break)")
	fl.StringVar(&plotDir, "plot", "", "directory to write loss.svg, the loss per epoch (SGD), to")
	fl.StringVar(&out, "out", "", "model file to write (required)")
	fl.BoolVar(&stream, "stream", false, "read the file once per pass instead of holding it in memory")
	fl.BoolVar(&drop, "drop-nonfinite", false, "drop rows with a missing value (or an infinity) instead of imputing it")
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

func printTrain(w io.Writer, r trainReport) {
	fmt.Fprintf(w, "trained on %d rows with %s", r.RowsTrain, r.Solver)
	if r.Epochs > 0 {
		fmt.Fprintf(w, ", %d epochs (best %d", r.Epochs, r.BestEpoch)
		if r.StoppedEarly {
			fmt.Fprint(w, ", stopped early")
		}
		fmt.Fprint(w, ")")
	} else {
		fmt.Fprintf(w, ", l2 %.3g", r.L2)
	}
	fmt.Fprintf(w, ", %.0f rows/s, %.2fs\n", r.RowsPerSec, r.Seconds)
	if r.RowsHoldout > 0 {
		fmt.Fprintf(w, "held out %d rows to measure a model fitted without them; the model written saw every row\n", r.RowsHoldout)
	}
	if r.RowsDropped > 0 {
		fmt.Fprintf(w, "dropped %d rows (missing target, or --drop-nonfinite)\n", r.RowsDropped)
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
