package model

import (
	"math"
	"slices"
)

// Contribution is one feature's share of a prediction: Weight x the
// standardized value, (Value - Mean) / Std. Value is the feature as the
// model sees it, after preprocessing (1 or 0 for a one-hot feature named
// column=category).
type Contribution struct {
	Feature      string  `json:"feature"`
	Value        float32 `json:"value"`
	Contribution float64 `json:"contribution"`
}

// Explanation is a prediction taken apart. Bias plus the contributions of
// every feature is Score: the prediction of a regression model, the logit
// (log-odds, before the sigmoid) of a logistic one. Top holds the k
// largest contributions by magnitude, largest first, so Bias + sum(Top)
// equals Score only when Top holds them all.
type Explanation struct {
	Bias  float64        `json:"bias"`
	Score float64        `json:"score"`
	Top   []Contribution `json:"explain"`
}

// Explain returns the contributions of reading x (raw features in model
// order, as Predict takes them) to m's prediction, the k largest by
// magnitude (every one when k <= 0 or k >= the width). Sums are taken in
// float64; they agree with Predictor.Predict within float32 rounding (the
// quantized kernels of models wider than ExpandWidth add the error of
// quantizing the reading). It returns Model.CheckVector's error if x
// does not fit m.
func (m *Model) Explain(x []float32, k int) (Explanation, error) {
	if err := m.CheckVector(x); err != nil {
		return Explanation{}, err
	}
	e := Explanation{Bias: float64(m.Bias), Score: float64(m.Bias)}
	all := make([]Contribution, len(x))
	for i, v := range x {
		c := float64(m.Weights[i]) * (float64(v) - float64(m.Mean[i])) / float64(m.Std[i])
		all[i] = Contribution{Feature: m.Features[i], Value: v, Contribution: c}
		e.Score += c
	}
	slices.SortStableFunc(all, func(a, b Contribution) int {
		return -cmpAbs(a.Contribution, b.Contribution)
	})
	if k > 0 && k < len(all) {
		all = all[:k:k]
	}
	e.Top = all
	return e, nil
}

func cmpAbs(a, b float64) int {
	a, b = math.Abs(a), math.Abs(b)
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
