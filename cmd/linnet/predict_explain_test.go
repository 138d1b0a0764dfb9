package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPredictExplain(t *testing.T) {
	dir := t.TempDir()
	tr := writeSynth(t, dir, "houses", 3000, 7)
	out := filepath.Join(dir, "m.lnm")
	if _, err := linnet(t, "train", "--data", tr, "--target", "price_k", "--out", out); err != nil {
		t.Fatal(err)
	}
	// An ordinary house, then one far from the others in area only.
	csv := "income_eur,lot_m2,distance_m,age_years,rooms,area_m2\n" +
		"30000,1000,5000,20,3,100\n" +
		"30000,1000,5000,20,3,900\n"
	in := filepath.Join(dir, "in.csv")
	os.WriteFile(in, []byte(csv), 0o644)
	for _, top := range []string{"0", "2"} {
		s, err := linnet(t, "predict", "--model", out, "--data", in, "--explain", "--top", top)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(s), "\n")
		if len(lines) != 2 {
			t.Fatalf("--top %s: %q", top, s)
		}
		for i, l := range lines {
			var row struct {
				Row        int
				Prediction float64
				Bias       float64
				Score      float64
				Explain    []struct {
					Feature      string
					Value        float64
					Contribution float64
				}
			}
			if err := json.Unmarshal([]byte(l), &row); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			if row.Row != i+1 || math.Abs(row.Prediction-row.Score) > 1e-6*math.Abs(row.Score) {
				t.Errorf("row %d: %s", i+1, l)
			}
			if top == "2" {
				if len(row.Explain) != 2 {
					t.Errorf("--top 2: %s", l)
				}
				if i == 1 && (row.Explain[0].Feature != "area_m2" || row.Explain[0].Value != 900) {
					t.Errorf("a 900 m2 house is not explained by its area first: %s", l)
				}
				continue
			}
			sum := row.Bias
			for _, c := range row.Explain {
				sum += c.Contribution
			}
			if len(row.Explain) != 6 || math.Abs(sum-row.Prediction) > 1e-5*math.Max(1, math.Abs(row.Prediction)) {
				t.Errorf("bias + contributions %v, prediction %v: %s", sum, row.Prediction, l)
			}
		}
	}
}
