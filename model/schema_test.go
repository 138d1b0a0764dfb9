package model

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestVector(t *testing.T) {
	m := testModel(3, Squared, 1)
	named := map[string]float64{}
	for i, f := range m.Features {
		named[f] = float64(i) + 0.5
	}
	dst := make([]float32, 3)
	if err := m.Vector(dst, named); err != nil || dst[0] != 0.5 || dst[2] != 2.5 {
		t.Fatalf("Vector: %v %v", dst, err)
	}
	if a := testing.AllocsPerRun(100, func() { _ = m.Vector(dst, named) }); a != 0 {
		t.Errorf("Vector allocates %v times", a)
	}

	delete(named, m.Features[1])
	err := m.Vector(dst, named)
	if !errors.Is(err, ErrMissingFeature) || !strings.Contains(err.Error(), m.Features[1]) {
		t.Errorf("missing: %v", err)
	}
	named[m.Features[1]] = 1
	named["humidity"] = 3
	err = m.Vector(dst, named)
	if !errors.Is(err, ErrUnknownFeature) || !strings.Contains(err.Error(), `"humidity"`) {
		t.Errorf("unknown: %v", err)
	}
	delete(named, "humidity")
	named[m.Features[0]] = math.NaN()
	if err := m.Vector(dst, named); !errors.Is(err, ErrNotFinite) {
		t.Errorf("NaN: %v", err)
	}
	if err := m.Vector(make([]float32, 2), named); !errors.Is(err, ErrFeatureCount) {
		t.Errorf("short dst: %v", err)
	}
}

func TestPositional(t *testing.T) {
	m := testModel(3, Squared, 1)
	dst := make([]float32, 3)
	if err := m.Positional(dst, []float64{1, 2, 3}); err != nil || dst[1] != 2 {
		t.Fatalf("Positional: %v", err)
	}
	err := m.Positional(dst, []float64{1, 2})
	if !errors.Is(err, ErrFeatureCount) || !strings.Contains(err.Error(), "got 2 values, the model needs 3") {
		t.Errorf("count: %v", err)
	}
	if err := m.Positional(dst, []float64{1, math.Inf(1), 3}); !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), m.Features[1]) {
		t.Errorf("inf: %v", err)
	}
	if err := m.CheckVector([]float32{1, 2}); !errors.Is(err, ErrFeatureCount) {
		t.Errorf("CheckVector: %v", err)
	}
	if m.Index(m.Features[2]) != 2 || m.Index("nope") != -1 {
		t.Error("Index")
	}
}
