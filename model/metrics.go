package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
)

// Metrics are a model's scores on a set of rows: RMSE, MAE and R² for
// regression (squared, huber); accuracy (threshold 0.5), log loss and the
// area under the ROC curve for logistic models, whose predictions are
// probabilities. AUC is NaN when the rows hold only one class.
type Metrics struct {
	Rows     int64
	RMSE     float64
	MAE      float64
	R2       float64
	Accuracy float64
	LogLoss  float64
	AUC      float64
}

// Map returns the metrics that apply to loss, keyed as linnet's JSON
// prints them: rows, rmse, mae, r2 or rows, accuracy, logloss, auc.
func (m Metrics) Map(loss Loss) map[string]float64 {
	if loss == Logistic {
		r := map[string]float64{"rows": float64(m.Rows), "accuracy": m.Accuracy, "logloss": m.LogLoss, "auc": m.AUC}
		if math.IsNaN(m.AUC) {
			delete(r, "auc") // one class only: the AUC is not defined
		}
		return r
	}
	return map[string]float64{"rows": float64(m.Rows), "rmse": m.RMSE, "mae": m.MAE, "r2": m.R2}
}

// Scorer accumulates predictions against labels in bounded memory, so a
// file larger than memory can be scored. The AUC is exact for up to
// exactAUC rows (it keeps every pair); past that it is computed from a
// histogram of the logit in aucBins bins over [-40, 40], which counts two
// predictions in one bin as a tie. The zero value is not usable: call
// NewScorer.
type Scorer struct {
	loss             Loss
	n                int64
	se, ae, sy, syy  float64
	correct, logloss float64
	pairs            []scored
	pos, neg         []uint64 // the histogram, once pairs overflow
}

const (
	exactAUC = 1 << 20
	aucBins  = 1 << 16
)

func aucBin(p float32) int {
	q := math.Min(math.Max(float64(p), 1e-12), 1-1e-12) // 1-1e-17 would round to 1
	z := math.Log(q / (1 - q))
	return min(aucBins-1, max(0, int((z+40)/80*aucBins)))
}

func (s *Scorer) addPair(p float32, y bool) {
	if s.pos == nil {
		if len(s.pairs) < exactAUC {
			s.pairs = append(s.pairs, scored{p, y})
			return
		}
		s.pos, s.neg = make([]uint64, aucBins), make([]uint64, aucBins)
		for _, q := range s.pairs {
			s.addBin(q.p, q.y)
		}
		s.pairs = nil
	}
	s.addBin(p, y)
}

func (s *Scorer) addBin(p float32, y bool) {
	if y {
		s.pos[aucBin(p)]++
	} else {
		s.neg[aucBin(p)]++
	}
}

// binnedAUC is auc over the histogram: ties within a bin count half.
func (s *Scorer) binnedAUC() float64 {
	var below, pos, neg, sum float64
	for b := range s.pos {
		p, n := float64(s.pos[b]), float64(s.neg[b])
		sum += p * (below + n/2)
		below += n
		pos += p
		neg += n
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return sum / (pos * neg)
}

type scored struct {
	p float32
	y bool
}

// NewScorer returns a Scorer for a model trained with loss.
func NewScorer(loss Loss) *Scorer { return &Scorer{loss: loss} }

// Add counts one prediction (a probability for logistic models) and its label.
func (s *Scorer) Add(pred, y float32) {
	s.n++
	if s.loss == Logistic {
		pos := y > 0.5
		if (pred >= 0.5) == pos {
			s.correct++
		}
		p := math.Min(math.Max(float64(pred), 1e-15), 1-1e-15)
		if pos {
			s.logloss -= math.Log(p)
		} else {
			s.logloss -= math.Log1p(-p)
		}
		s.addPair(pred, pos)
		return
	}
	d := float64(pred) - float64(y)
	s.se += d * d
	s.ae += math.Abs(d)
	s.sy += float64(y)
	s.syy += float64(y) * float64(y)
}

// Metrics returns the scores of what has been added.
func (s *Scorer) Metrics() Metrics {
	m := Metrics{Rows: s.n}
	if s.n == 0 {
		return m
	}
	n := float64(s.n)
	if s.loss == Logistic {
		m.Accuracy = s.correct / n
		m.LogLoss = s.logloss / n
		if s.pos != nil {
			m.AUC = s.binnedAUC()
		} else {
			m.AUC = auc(s.pairs)
		}
		return m
	}
	m.RMSE = math.Sqrt(s.se / n)
	m.MAE = s.ae / n
	ss := s.syy - s.sy*s.sy/n
	if ss > 0 {
		m.R2 = 1 - s.se/ss
	}
	return m
}

// auc is the Mann-Whitney statistic: the probability that a random
// positive scores above a random negative, ties counting half.
func auc(p []scored) float64 {
	sort.Slice(p, func(i, j int) bool { return p[i].p < p[j].p })
	var pos, neg float64
	var rankSum float64
	for i := 0; i < len(p); {
		j := i
		for j < len(p) && p[j].p == p[i].p {
			j++
		}
		mid := float64(i+j+1) / 2 // mean 1-based rank of the tie group
		for k := i; k < j; k++ {
			if p[k].y {
				pos++
				rankSum += mid
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

// Evaluate scores m on every remaining row of src, computing as a
// Predictor serves it (a q8 or q4 model with its quantized weights).
// src must yield m's features in m's order (CSVOptions.Features).
func Evaluate(ctx context.Context, m *Model, src RowSource) (Metrics, error) {
	rest, _, err := EvaluateSplit(ctx, m, src, 0, 0)
	return rest, err
}

// EvaluateSplit is Evaluate with the rows split as Train split them:
// row i goes to holdout if InHoldout(seed, frac, i), else to rest.
func EvaluateSplit(ctx context.Context, m *Model, src RowSource, seed uint64, frac float64) (rest, holdout Metrics, err error) {
	if !slices.Equal(src.Features(), m.Features) {
		return rest, holdout, fmt.Errorf("evaluate: the data's features %v are not the model's %v", src.Features(), m.Features)
	}
	p := NewPredictor(m)
	sr, sh := NewScorer(m.Loss), NewScorer(m.Loss)
	n := len(m.Features)
	const chunk = 256
	rows := make([]float32, chunk*n)
	ys := make([]float32, chunk)
	hold := make([]bool, chunk)
	pred := make([]float32, chunk)
	var i int64
	k := 0
	flush := func() {
		p.PredictBatch(pred[:k], rows[:k*n])
		for j := range k {
			if hold[j] {
				sh.Add(pred[j], ys[j])
			} else {
				sr.Add(pred[j], ys[j])
			}
		}
		k = 0
	}
	for ; ; i++ {
		y, err := src.Next(rows[k*n : (k+1)*n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rest, holdout, err
		}
		if err := checkLabel(m.Loss, y); err != nil {
			return rest, holdout, rowError(src, i, err.Error())
		}
		ys[k], hold[k] = y, InHoldout(seed, frac, i)
		if k++; k == chunk {
			flush()
			if i&0xffff == 0xffff {
				if err := ctx.Err(); err != nil {
					return rest, holdout, err
				}
			}
		}
	}
	flush()
	return sr.Metrics(), sh.Metrics(), nil
}

// EvaluateHeldOut scores, in one pass over src, m on every row and held
// on the rows InHoldout(seed, frac, i) puts in the holdout: the written
// model on what it was fitted on, and the model fitted without the
// holdout rows on them. held may be nil (no holdout metrics).
func EvaluateHeldOut(ctx context.Context, m, held *Model, src RowSource, seed uint64, frac float64) (all, holdout Metrics, err error) {
	if !slices.Equal(src.Features(), m.Features) {
		return all, holdout, fmt.Errorf("evaluate: the data's features %v are not the model's %v", src.Features(), m.Features)
	}
	p := NewPredictor(m)
	var ph *Predictor
	if held != nil {
		ph = NewPredictor(held)
	}
	sa, sh := NewScorer(m.Loss), NewScorer(m.Loss)
	x := make([]float32, len(m.Features))
	for i := int64(0); ; i++ {
		y, err := src.Next(x)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return all, holdout, err
		}
		if err := checkLabel(m.Loss, y); err != nil {
			return all, holdout, rowError(src, i, err.Error())
		}
		sa.Add(p.Predict(x), y)
		if ph != nil && InHoldout(seed, frac, i) {
			sh.Add(ph.Predict(x), y)
		}
		if i&0xffff == 0xffff {
			if err := ctx.Err(); err != nil {
				return all, holdout, err
			}
		}
	}
	return sa.Metrics(), sh.Metrics(), nil
}
