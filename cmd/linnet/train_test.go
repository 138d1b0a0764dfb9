package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/scripts/gendata/synth"
)

func writeSynth(t testing.TB, dir, kind string, rows int, seed uint64) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.csv", kind, seed))
	var buf bytes.Buffer
	if _, err := synth.WriteCSV(&buf, kind, rows, seed); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// olsTestRMSE fits least squares on the train file in float64 and returns
// its RMSE on the test file: the optimum a linear model can reach.
func olsTestRMSE(t *testing.T, trainPath, testPath, target string) float64 {
	t.Helper()
	load := func(p string) *model.Dataset {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := model.NewCSVReader(f, model.CSVOptions{Target: target})
		if err != nil {
			t.Fatal(err)
		}
		d, err := model.ReadDataset(r)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tr, te := load(trainPath), load(testPath)
	n, p := tr.Len(), len(tr.Names)
	a := mat.NewDense(n, p+1, nil)
	b := mat.NewVecDense(n, nil)
	for i := range n {
		for j, v := range tr.Row(i) {
			a.Set(i, j, float64(v))
		}
		a.Set(i, p, 1)
		b.SetVec(i, float64(tr.Y[i]))
	}
	var qr mat.QR
	qr.Factorize(a)
	var x mat.VecDense
	if err := qr.SolveVecTo(&x, false, b); err != nil {
		t.Fatal(err)
	}
	var se float64
	for i := range te.Len() {
		z := x.AtVec(p)
		for j, v := range te.Row(i) {
			z += x.AtVec(j) * float64(v)
		}
		d := z - float64(te.Y[i])
		se += d * d
	}
	return math.Sqrt(se / float64(te.Len()))
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	return v
}

// Acceptance 1 through the CLI: train's f32, q8 and q4 models score within
// 1%, 2% and 5% of the least-squares optimum on a test file, and train
// reports each file's size.
func TestTrainHousesSchemes(t *testing.T) {
	dir := t.TempDir()
	tr := writeSynth(t, dir, "houses", 30000, 1)
	te := writeSynth(t, dir, "houses", 10000, 2)
	opt := olsTestRMSE(t, tr, te, "price_k")
	for _, c := range []struct {
		scheme string
		tol    float64
	}{{"f32", 1.01}, {"q8", 1.02}, {"q4", 1.05}} {
		out := filepath.Join(dir, c.scheme+".lnm")
		s, err := linnet(t, "train", "--data", tr, "--target", "price_k", "--test", te, "--quantize", c.scheme, "--out", out, "--json")
		if err != nil {
			t.Fatal(err)
		}
		r := decode[map[string]any](t, s)
		for _, k := range []string{"rows_train", "epochs", "rows_per_sec", "train", "test", "model"} {
			if _, ok := r[k]; !ok {
				t.Errorf("train --json lacks %q: %s", k, s)
			}
		}
		rep := decode[trainReport](t, s)
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: test RMSE %.4f, least squares %.4f, ratio %.5f, %d bytes", c.scheme, rep.Test["rmse"], opt, rep.Test["rmse"]/opt, rep.Model.Bytes)
		if rep.Model.Scheme != model.Scheme(c.scheme) || int64(rep.Model.Bytes) != fi.Size() || rep.Model.Sizes[model.Scheme(c.scheme)] != rep.Model.Bytes {
			t.Errorf("%s: model %+v, file %d bytes", c.scheme, rep.Model, fi.Size())
		}
		if rep.Test["rmse"] > c.tol*opt {
			t.Errorf("%s: test RMSE %.4f above %.2f x least squares %.4f", c.scheme, rep.Test["rmse"], c.tol, opt)
		}
		if rep.RowsTrain != 30000 || rep.Test["rows"] != 10000 {
			t.Errorf("%s: rows %d train, %v test", c.scheme, rep.RowsTrain, rep.Test["rows"])
		}
		// eval agrees with train's test metrics.
		s, err = linnet(t, "eval", "--model", out, "--data", te, "--json")
		if err != nil {
			t.Fatal(err)
		}
		ev := decode[map[string]float64](t, s)
		if len(ev) != 4 || ev["rows"] != 10000 || ev["rmse"] != rep.Test["rmse"] || ev["mae"] == 0 || ev["r2"] == 0 {
			t.Errorf("eval %s, train's test %v", s, rep.Test)
		}
	}
}

// The seed's run is one command: plain SGD on MSE, 100 epochs, batch 32.
func TestTrainSeedRunAndStreaming(t *testing.T) {
	dir := t.TempDir()
	tr := writeSynth(t, dir, "houses", 5000, 3)
	out := filepath.Join(dir, "m.lnm")
	s, err := linnet(t, "train", "--data", tr, "--target", "price_k", "--optimizer", "sgd", "--lr", "0.01",
		"--batch-size", "32", "--epochs", "100", "--patience", "-1", "--out", out, "--json", "--plot", dir)
	if err != nil {
		t.Fatal(err)
	}
	rep := decode[trainReport](t, s)
	if rep.Epochs != 100 || len(rep.Loss) != 100 || rep.Test["rmse"] > 27 || rep.Test["rows"] < 800 {
		t.Errorf("seed run: %d epochs, test %v", rep.Epochs, rep.Test)
	}
	checkSVG(t, filepath.Join(dir, "loss.svg"), "loss per epoch", "mean squared error")
	// With an optimizer, --epochs 1 streams the file.
	s, err = linnet(t, "train", "--data", tr, "--target", "price_k", "--optimizer", "adaptive", "--epochs", "1", "--out", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	rep = decode[trainReport](t, s)
	if rep.Epochs != 1 || rep.Test["rmse"] > 27 || !strings.HasPrefix(rep.Solver, "sgd") {
		t.Errorf("streamed: %d epochs, solver %q, test %v", rep.Epochs, rep.Solver, rep.Test)
	}
	// The exact solver streams too, and lands where it does in memory.
	s, err = linnet(t, "train", "--data", tr, "--target", "price_k", "--out", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	mem := decode[trainReport](t, s)
	s, err = linnet(t, "train", "--data", tr, "--target", "price_k", "--stream", "--out", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	rep = decode[trainReport](t, s)
	if !strings.HasPrefix(rep.Solver, "exact") || !strings.Contains(rep.Solver, "streamed") || rep.RowsTrain != 5000 ||
		math.Abs(rep.Test["rmse"]-mem.Test["rmse"]) > 1e-3*mem.Test["rmse"] {
		t.Errorf("exact streamed: %q, %d rows, test %v; in memory %q, test %v", rep.Solver, rep.RowsTrain, rep.Test, mem.Solver, mem.Test)
	}
}

func TestLogisticCommands(t *testing.T) {
	dir := t.TempDir()
	tr := writeSynth(t, dir, "logistic-noisy", 8000, 5)
	te := writeSynth(t, dir, "logistic-noisy", 2000, 6)
	out := filepath.Join(dir, "m.lnm")
	s, err := linnet(t, "train", "--data", tr, "--target", "fault", "--loss", "logistic", "--quantize", "q8", "--out", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	rep := decode[trainReport](t, s)
	if rep.Test["accuracy"] < 0.8 || rep.Train["auc"] < 0.85 {
		t.Errorf("logistic train: %s", s)
	}
	s, err = linnet(t, "eval", "--model", out, "--data", te, "--json")
	if err != nil {
		t.Fatal(err)
	}
	ev := decode[map[string]float64](t, s)
	for _, k := range []string{"rows", "accuracy", "logloss", "auc"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("eval lacks %q: %s", k, s)
		}
	}
	s, err = linnet(t, "predict", "--model", out, "--data", te)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) != 2001 || lines[0] != "prediction,class" {
		t.Errorf("predict: %d lines, header %q", len(lines), lines[0])
	}
	fit := filepath.Join(dir, "fit.svg")
	if _, err := linnet(t, "plot", "--model", out, "--data", te, "--out", fit); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, fit, "calibration", "residuals")
}

func TestPredictRegressionAndPlot(t *testing.T) {
	dir := t.TempDir()
	tr := writeSynth(t, dir, "houses", 3000, 7)
	out := filepath.Join(dir, "m.lnm")
	if _, err := linnet(t, "train", "--data", tr, "--target", "price_k", "--out", out); err != nil {
		t.Fatal(err)
	}
	// Columns in another order, target absent: predict matches by name.
	csv := "income_eur,lot_m2,distance_m,age_years,rooms,area_m2,extra\n30000,1000,5000,20,3,100,7\n"
	in := filepath.Join(dir, "in.csv")
	os.WriteFile(in, []byte(csv), 0o644)
	s, err := linnet(t, "predict", "--model", out, "--data", in)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	// Truth: 40 + 110 + 36 - 18 - 12.5 + 20 + 60 = 235.5
	var v float64
	if len(lines) != 2 || lines[0] != "prediction" {
		t.Fatalf("predict: %q", s)
	}
	fmt.Sscan(lines[1], &v)
	if v < 225 || v > 246 {
		t.Errorf("prediction %v, truth 235.5", v)
	}
	fit := filepath.Join(dir, "fit.svg")
	if _, err := linnet(t, "plot", "--model", out, "--data", tr, "--target", "price_k", "--out", fit); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, fit, "predicted vs actual price_k", "residuals")
	// A PNG name gets a clear error before any work.
	if _, err := linnet(t, "plot", "--model", out, "--data", tr, "--out", filepath.Join(dir, "fit.png")); err == nil ||
		!strings.Contains(err.Error(), ".svg") {
		t.Errorf("plot --out fit.png: %v", err)
	}
}

// A bad CSV names the line and the column.
func TestTrainBadCSV(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.csv")
	os.WriteFile(p, []byte("a,b,y\n1,2,3\n4,5,6\n7,oops,9\n"), 0o644)
	_, err := linnet(t, "train", "--data", p, "--target", "y", "--out", filepath.Join(dir, "m.lnm"))
	if err == nil || !strings.Contains(err.Error(), "line 4, column 2 (b)") {
		t.Errorf("error %v does not name line 4, column 2 (b)", err)
	}
	os.WriteFile(p, []byte("a,y\n1,0\n2,3\n"), 0o644)
	_, err = linnet(t, "train", "--data", p, "--target", "y", "--loss", "logistic", "--out", filepath.Join(dir, "m.lnm"))
	if err == nil || !strings.Contains(err.Error(), "line 3, column 2 (y)") {
		t.Errorf("logistic label 3: %v", err)
	}
	// NaN is a missing value: imputed by default, refused with --missing
	// error; an infinity is never a value.
	os.WriteFile(p, []byte("a,y\n1,0\nnan,3\n2,1\n"), 0o644)
	if _, err := linnet(t, "train", "--data", p, "--target", "y", "--holdout", "0", "--out", filepath.Join(dir, "m.lnm")); err != nil {
		t.Errorf("NaN not imputed: %v", err)
	}
	if _, err := linnet(t, "train", "--data", p, "--target", "y", "--missing", "error", "--out", filepath.Join(dir, "m.lnm")); err == nil || !strings.Contains(err.Error(), "line 3, column 1 (a)") {
		t.Errorf("--missing error: %v", err)
	}
	os.WriteFile(p, []byte("a,y\n1,0\ninf,3\n2,1\n"), 0o644)
	if _, err := linnet(t, "train", "--data", p, "--target", "y", "--out", filepath.Join(dir, "m.lnm")); err == nil {
		t.Error("Inf accepted")
	}
	if _, err := linnet(t, "train", "--data", p, "--target", "y", "--drop-nonfinite", "--holdout", "0", "--out", filepath.Join(dir, "m.lnm")); err != nil {
		t.Errorf("--drop-nonfinite: %v", err)
	}
	if _, err := linnet(t, "train", "--data", p, "--target", "nope", "--out", filepath.Join(dir, "m.lnm")); err == nil {
		t.Error("missing target column accepted")
	}
}

// quantize --data scores the source and the written copy on the same rows:
// the copy's metrics are what eval says of the file, and q4 costs a little.
func TestQuantizeWithData(t *testing.T) {
	dir := t.TempDir()
	tr := writeSynth(t, dir, "houses", 5000, 1)
	te := writeSynth(t, dir, "houses", 2000, 2)
	src := filepath.Join(dir, "f32.lnm")
	if _, err := linnet(t, "train", "--data", tr, "--target", "price_k", "--version", "7", "--out", src); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "q4.lnm")
	s, err := linnet(t, "quantize", "--model", src, "--scheme", "q4", "--out", out, "--data", te, "--json")
	if err != nil {
		t.Fatal(err)
	}
	r := decode[quantizeReport](t, s)
	if r.Scheme != model.Q4 || r.Parent != 7 || r.Version <= 7 || r.SourceMetrics["rows"] != 2000 || r.Metrics["rows"] != 2000 {
		t.Fatalf("report %+v", r)
	}
	ev := decode[map[string]float64](t, must(linnet(t, "eval", "--model", out, "--data", te, "--json")))
	if ev["rmse"] != r.Metrics["rmse"] {
		t.Errorf("quantize says the copy's RMSE is %v, eval says %v", r.Metrics["rmse"], ev["rmse"])
	}
	if ratio := r.Metrics["rmse"] / r.SourceMetrics["rmse"]; ratio < 1 || ratio > 1.05 {
		t.Errorf("q4 copy RMSE %v vs f32 %v: ratio %.4f outside [1, 1.05]", r.Metrics["rmse"], r.SourceMetrics["rmse"], ratio)
	}
	if _, err := linnet(t, "quantize", "--model", src, "--scheme", "q8", "--out", out, "--data", filepath.Join(dir, "missing.csv")); err == nil {
		t.Error("quantize --data accepted a missing file")
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
