package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/model"
)

// messyRow is one row of a real-world export: a timestamp, a device name
// (quoted, holding the delimiter), a category, two sensors; 5% of the
// category and sensor cells are missing, written as "", NA, NaN or null.
type messyRow struct {
	ts, device, room string
	temp, hum        float64
	has              [3]bool // room, temp, hum present
	y                float64
}

var missingSpellings = []string{"", "NA", "NaN", "null"}

func messyRows(n int, seed uint64) []messyRow {
	r := rand.New(rand.NewPCG(seed, 3))
	rooms := []string{"bath", "kitchen", "living", "bed"}
	effect := map[string]float64{"bath": 4, "kitchen": -2, "living": 1, "bed": 0}
	rows := make([]messyRow, n)
	for i := range rows {
		row := &rows[i]
		row.ts = fmt.Sprintf("2026-11-%02dT%02d:%02d:00Z", 1+i/1440%28, i/60%24, i%60)
		row.device = fmt.Sprintf("dev;%d", r.IntN(40))
		row.room = rooms[r.IntN(len(rooms))]
		row.temp = math.Round((20+5*r.NormFloat64())*100) / 100
		row.hum = math.Round((50+12*r.NormFloat64())*10) / 10
		row.y = math.Round((10+2*row.temp-0.5*row.hum+effect[row.room]+r.NormFloat64())*1000) / 1000
		for k := range row.has {
			row.has[k] = r.Float64() >= 0.05
		}
	}
	return rows
}

func writeMessy(t *testing.T, path string, rows []messyRow) {
	t.Helper()
	var b strings.Builder
	b.WriteString("ts;device;room;temp;hum;y\n")
	for i, row := range rows {
		cell := func(k int, s string) string {
			if row.has[k] {
				return s
			}
			return missingSpellings[i%len(missingSpellings)]
		}
		fmt.Fprintf(&b, "%s;\"%s\";%s;%s;%s;%g\n", row.ts, row.device, cell(0, row.room),
			cell(1, strconv.FormatFloat(row.temp, 'g', -1, 64)), cell(2, strconv.FormatFloat(row.hum, 'g', -1, 64)), row.y)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Acceptance: a CSV with a timestamp, a device text column, a category,
// 5% missing cells and ';' trains with --ignore ts,device, evaluates and
// predicts; the predictions equal those of the Encoder (the daemon's path)
// given the same readings as name -> value with nulls and absent names.
func TestMessyCSV(t *testing.T) {
	dir := t.TempDir()
	trainPath, testPath := filepath.Join(dir, "train.csv"), filepath.Join(dir, "test.csv")
	trainRows, testRows := messyRows(3000, 1), messyRows(1000, 2)
	writeMessy(t, trainPath, trainRows)
	writeMessy(t, testPath, testRows)
	out := filepath.Join(dir, "m.lnm")

	// Without --ignore, the timestamp is text with too many values: the
	// error names the column and the remedy.
	_, err := linnet(t, "train", "--data", trainPath, "--target", "y", "--out", out)
	if err == nil || !strings.Contains(err.Error(), `"ts"`) || !strings.Contains(err.Error(), "--hash-bits") || !strings.Contains(err.Error(), "--ignore") {
		t.Fatalf("a timestamp column: %v", err)
	}

	s, err := linnet(t, "train", "--data", trainPath, "--target", "y", "--ignore", "ts,device", "--json", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	rep := decode[trainReport](t, s)
	if strings.Join(rep.Model.Inputs, ",") != "room,temp,hum" || rep.Model.Width != 6 || rep.RowsTrain != 3000 {
		t.Errorf("inputs %v, width %d, rows %d", rep.Model.Inputs, rep.Model.Width, rep.RowsTrain)
	}
	// The noise is 1; a mean imputed for 5% of temp (weight 2, sd 5) and
	// hum (0.5, sd 12) adds sqrt(0.05*100 + 0.05*36) = 2.6 in quadrature.
	if rep.Test["rmse"] > 3.2 {
		t.Errorf("test rmse %v", rep.Test["rmse"])
	}
	m, _, err := model.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Preprocessing == nil || m.Preprocessing.Columns[0].Kind != model.OneHot || len(m.Min) != 6 || m.TargetStd == 0 {
		t.Fatalf("preprocessing %+v, ranges %v, target std %v", m.Preprocessing, m.Min, m.TargetStd)
	}

	s, err = linnet(t, "eval", "--model", out, "--data", testPath, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if ev := decode[map[string]float64](t, s); ev["rows"] != 1000 || ev["rmse"] > 3.2 {
		t.Errorf("eval %v", ev)
	}

	s, err = linnet(t, "predict", "--model", out, "--data", testPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) != 1001 {
		t.Fatalf("predict printed %d lines", len(lines))
	}
	enc := model.NewEncoder(m)
	p := model.NewPredictor(m)
	x := make([]float32, enc.Width())
	var imputed int
	for i, row := range testRows {
		named := map[string]model.Value{}
		if row.has[0] {
			named["room"] = model.Str(row.room)
		} else if i%2 == 0 {
			named["room"] = model.Value{} // null; odd rows leave the name out
		}
		if row.has[1] {
			named["temp"] = model.Num(row.temp)
		} else if i%2 == 0 {
			named["temp"] = model.Value{}
		}
		if row.has[2] {
			named["hum"] = model.Str(strconv.FormatFloat(row.hum, 'g', -1, 64))
		}
		var er model.EncodeReport
		if err := enc.Encode(x, named, &er); err != nil {
			t.Fatal(err)
		}
		imputed += len(er.Imputed)
		want := float64(p.Predict(x))
		got, err := strconv.ParseFloat(lines[i+1], 64)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
			t.Errorf("row %d: predict %v, encoder %v", i, got, want)
		}
	}
	if imputed < 100 || imputed > 200 {
		t.Errorf("imputed %d of 3000 cells, want about 5%%", imputed)
	}
	if s, err := linnet(t, "inspect", out); err != nil || !strings.Contains(s, "room: onehot") {
		t.Errorf("inspect: %v\n%s", err, s)
	}
}

// inspect --json shows a format 2 file's preprocessing and statistics.
func TestInspectPreprocessing(t *testing.T) {
	s, err := linnet(t, "inspect", "--json", filepath.Join("..", "..", "model", "testdata", "v2-f32.lnm"))
	if err != nil {
		t.Fatal(err)
	}
	r := decode[inspectReport](t, s)
	if r.Format != 2 || r.Missing != "impute" || len(r.Columns) != 4 || r.Stats == nil || r.Stats.TargetStd != 2.5 {
		t.Fatalf("report %+v", r)
	}
	room := r.Columns[1]
	if room.Kind != "onehot" || strings.Join(room.Categories, ",") != "bath,kitchen,living" || room.FillCategory != "kitchen" {
		t.Errorf("room %+v", room)
	}
	if r.Columns[0].Fill == nil || *r.Columns[0].Fill != 21.5 || !r.Columns[0].Indicator || r.Columns[2].HashBits != 2 {
		t.Errorf("columns %+v", r.Columns)
	}
	if r.Features[0].Min == nil || r.Features[1].Max == nil {
		t.Errorf("feature ranges missing: %+v", r.Features[:2])
	}
}
