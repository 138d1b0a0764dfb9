package onnx

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/linnet-edge/linnet/model"
)

// python returns a Python 3 with Debian's python3-onnx and python3-numpy,
// or skips the test saying what is missing. LINNET_PYTHON picks one.
func python(t *testing.T) string {
	t.Helper()
	pythonOnce.Do(func() {
		candidates := []string{os.Getenv("LINNET_PYTHON"), "python3", "/usr/bin/python3"}
		for _, c := range candidates {
			if c == "" {
				continue
			}
			if exec.Command(c, "-c", "import onnx, numpy").Run() == nil {
				pythonPath = c
				return
			}
		}
	})
	if pythonPath == "" {
		t.Skip("python3 with the onnx and numpy modules is not installed (Debian: apt-get install python3-onnx python3-numpy)")
	}
	return pythonPath
}

var (
	pythonOnce sync.Once
	pythonPath string
)

type pyCase struct {
	Name     string `json:"name"`
	Columns  int    `json:"columns"`
	Rows     int    `json:"rows"`
	Logistic bool   `json:"logistic"`
	Text     bool   `json:"text"` // a column holds text
}

// buildGraphs runs testdata/graphs.py build into a temporary directory.
func buildGraphs(t *testing.T) (string, []pyCase) {
	t.Helper()
	py := python(t)
	dir := t.TempDir()
	out, err := exec.Command(py, "testdata/graphs.py", "build", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("graphs.py build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []pyCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	return dir, cases
}

func readF32(t *testing.T, path string) []float32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func readF64(t *testing.T, path string) []float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

// TestImportPythonGraphs imports one graph per supported op pattern and
// compares linnet's predictions with numpy's evaluation of the same graph
// on 1,000 rows: 1e-5 relative.
func TestImportPythonGraphs(t *testing.T) {
	dir, cases := buildGraphs(t)
	if len(cases) == 0 {
		t.Fatal("graphs.py built no cases")
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			file, err := os.ReadFile(filepath.Join(dir, c.Name+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			m, info, err := Import(file, Options{})
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			if got := len(model.NewEncoder(m).Inputs()); got != c.Columns {
				t.Fatalf("%d input columns, want %d", got, c.Columns)
			}
			if (m.Loss == model.Logistic) != c.Logistic {
				t.Fatalf("loss %s, logistic %v", m.Loss, c.Logistic)
			}
			want := readF64(t, filepath.Join(dir, c.Name+".y"))
			var x []float32
			if m.Preprocessing != nil {
				x = encodeRows(t, m, filepath.Join(dir, c.Name+".rows.json"))
			} else {
				x = readF32(t, filepath.Join(dir, c.Name+".x"))
			}
			if len(want) != c.Rows || len(x) != c.Rows*len(m.Features) {
				t.Fatalf("%d expectations and %d inputs for %d rows", len(want), len(x), c.Rows)
			}
			got := make([]float32, c.Rows)
			model.NewPredictor(m).PredictBatch(got, x)
			worst := 0.0
			for i, w := range want {
				rel := math.Abs(float64(got[i])-w) / math.Abs(w)
				if !(rel <= 1e-5) {
					t.Fatalf("row %d: linnet %v, numpy %v (relative error %.3g); ops %v", i, got[i], w, rel, info.Ops)
				}
				worst = max(worst, rel)
			}
			t.Logf("%d rows, worst relative error %.3g, output %q, ops %v", c.Rows, worst, info.Output, info.Ops)
		})
	}
}

// checkONNX runs onnx.checker.check_model(full_check=True) on files.
func checkONNX(t *testing.T, files ...string) {
	t.Helper()
	py := python(t)
	out, err := exec.Command(py, append([]string{"testdata/graphs.py", "check"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx.checker: %v\n%s", err, out)
	}
}

// encodeRows reads rows of raw values (numbers, null, strings) and encodes
// them with the model's preprocessing, as the daemon does with a reading.
func encodeRows(t *testing.T, m *model.Model, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	enc := model.NewEncoder(m)
	n := len(m.Features)
	x := make([]float32, len(rows)*n)
	vals := make([]model.Value, len(enc.Inputs()))
	for r, row := range rows {
		for i, v := range row {
			switch v := v.(type) {
			case nil:
				vals[i] = model.Value{}
			case float64:
				vals[i] = model.Num(v)
			case string:
				vals[i] = model.Str(v)
			}
		}
		if err := enc.EncodeValues(x[r*n:(r+1)*n], vals, nil); err != nil {
			t.Fatalf("row %d: %v", r, err)
		}
	}
	return x
}

// numpyEval evaluates the ONNX file with testdata/graphs.py's numpy
// interpreter on rows of raw values (one per graph input; nil is NaN).
func numpyEval(t *testing.T, file []byte, rows [][]any) []float64 {
	t.Helper()
	py := python(t)
	dir := t.TempDir()
	model, rowsPath, out := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "rows.json"), filepath.Join(dir, "y")
	b, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(model, file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rowsPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(py, "testdata/graphs.py", "eval", model, rowsPath, out).CombinedOutput(); err != nil {
		t.Fatalf("graphs.py eval: %v\n%s", err, msg)
	}
	return readF64(t, out)
}
