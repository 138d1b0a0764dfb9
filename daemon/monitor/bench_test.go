package monitor

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/model"
)

// BenchmarkObserve measures the per-reading cost of the detectors on a
// 32-feature model beside one prediction of the same model, in one run:
// compare Observe32 and ObserveLoss with Predict32.
func BenchmarkObserve(b *testing.B) {
	m := numericModel(32)
	r := rand.New(rand.NewPCG(1, 1))
	rows := make([][]float32, 1024)
	for i := range rows {
		rows[i] = make([]float32, 32)
		reading(r, m, rows[i], -1, 0)
	}
	b.Run("Predict32", func(b *testing.B) {
		p := model.NewPredictor(m)
		var s float32
		i := 0
		for b.Loop() {
			s += p.Predict(rows[i&1023])
			i++
		}
		_ = s
	})
	observe := func(m *model.Model) func(b *testing.B) {
		return func(b *testing.B) {
			d := NewFeatureDrift("m", m, DefaultConfig())
			i := 0
			for b.Loop() {
				d.Observe(rows[i&1023], t0)
				i++
			}
		}
	}
	b.Run("Observe32", observe(m))
	big := numericModel(32)
	big.Mean[0], big.Std[0] = 1e9, 1
	b.Run("Observe32Centred", observe(big))
	b.Run("WatchReading32", func(b *testing.B) {
		w := NewWatch("m", m, DefaultConfig(), false)
		i := 0
		for b.Loop() {
			w.Reading(rows[i&1023], t0)
			i++
		}
	})
	b.Run("ObserveLoss", func(b *testing.B) {
		l := NewLossDrift("m", "", DefaultConfig())
		now := time.Now()
		i := 0
		for b.Loop() {
			l.Observe(float64(rows[i&1023][3]), now)
			i++
		}
	})
}
