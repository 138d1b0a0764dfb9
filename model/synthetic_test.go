package model

import (
	"math"
	"testing"
)

// A model trained on the data predicts synthetic readings from its own
// statistics within the range of its training targets (widened); a model
// with absurd weights does not.
func TestSyntheticReadings(t *testing.T) {
	tr, _ := synthData(t, "houses", 5000, 71)
	m, _ := train(t, tr, TrainConfig{})
	rows := SyntheticReadings(m, 200, 1)
	if len(rows) != 200 {
		t.Fatalf("%d rows", len(rows))
	}
	again := SyntheticReadings(m, 200, 1)
	for i := range rows {
		for j, v := range rows[i] {
			if v < m.Min[j] || v > m.Max[j] || again[i][j] != v {
				t.Fatalf("row %d feature %d: %v outside [%v, %v] or not reproducible", i, j, v, m.Min[j], m.Max[j])
			}
		}
	}
	b := NewBounds(m, DefaultMargin)
	p := NewPredictor(m)
	for _, x := range rows {
		if y := float64(p.Predict(x)); y < b.YLo || y > b.YHi {
			t.Errorf("trained model predicts %v on a synthetic reading, outside [%v, %v]", y, b.YLo, b.YHi)
		}
	}
	bad := m.Clone()
	bad.Weights[0] = 2.7e32
	pb := NewPredictor(bad)
	far := 0
	for _, x := range rows {
		if y := float64(pb.Predict(x)); math.IsInf(y, 0) || y < b.YLo || y > b.YHi {
			far++
		}
	}
	if far == 0 {
		t.Error("a model with a weight of 2.7e32 predicts plausibly on every synthetic reading")
	}
	// Without ranges: Mean and Std; without either: nothing.
	m.Min, m.Max = nil, nil
	if rows := SyntheticReadings(m, 10, 2); len(rows) != 10 {
		t.Errorf("mean/std fallback: %d rows", len(rows))
	}
	if rows := SyntheticReadings(&Model{Features: []string{"a"}, Mean: []float32{0}, Std: []float32{1}}, 10, 2); rows != nil {
		t.Errorf("no statistics: %d rows", len(rows))
	}
}
