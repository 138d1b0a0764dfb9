package daemon

import (
	"crypto/ed25519"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// demoModel is activated on an empty store when linnet runs on its
// embedded defaults (no broker configured), so `linnet run` answers at
// once. It is version 1, so any trained model is newer. Made with
//
//	go run ./scripts/gendata -kind houses -rows 5000 -seed 1 -out demo.csv
//	linnet train --data demo.csv --target price_k --quantize q8 --version 1 --seed 1 --out daemon/demo.lnm
//
// Features area_m2, rooms, age_years, distance_m, lot_m2, income_eur;
// target price_k (test r2 0.86).
//
//go:embed demo.lnm
var demoModel []byte

// modelScorer serves a decoded model through its Predictor (immutable and
// safe for concurrent use).
type modelScorer struct {
	m *model.Model
	p *model.Predictor
}

// NewScorer wraps m for serving.
func NewScorer(m *model.Model) Scorer {
	return &modelScorer{m: m, p: model.NewPredictor(m)}
}

func (s *modelScorer) Version() int64                   { return s.m.Version }
func (s *modelScorer) Features() []string               { return s.m.Features }
func (s *modelScorer) Logistic() bool                   { return s.m.Loss == model.Logistic }
func (s *modelScorer) Scheme() string                   { return string(s.m.Scheme) }
func (s *modelScorer) Predict(x []float32) float32      { return s.p.Predict(x) }
func (s *modelScorer) PredictBatch(dst, rows []float32) { s.p.PredictBatch(dst, rows) }

// modelLearner adapts model.Learner: its serving copy is the snapshot of
// the float32 master weights quantized to the served model's scheme, under
// the served model's version (the status message counts the updates).
type modelLearner struct {
	l       *model.Learner
	scheme  model.Scheme
	version int64
}

// NewLearner starts online learning from m (its weights and scaling).
func NewLearner(m *model.Model) Learner {
	return &modelLearner{l: model.NewLearner(m, model.LearnerConfig{}), scheme: m.Scheme, version: m.Version}
}

func (a *modelLearner) Learn(x []float32, y float32) (float32, float64) { return a.l.Learn(x, y) }
func (a *modelLearner) Progressive() float64                            { return a.l.Progressive() }
func (a *modelLearner) Updates() int64                                  { return a.l.Updates() }
func (a *modelLearner) MarshalBinary() ([]byte, error)                  { return a.l.MarshalBinary() }

func (a *modelLearner) Serving() (Scorer, error) {
	snap := a.l.Snapshot()
	snap.Version = a.version
	q, err := snap.Quantize(a.scheme)
	if err != nil {
		return nil, fmt.Errorf("quantize the learned weights: %w", err)
	}
	return NewScorer(q), nil
}

// openStore opens the model store under the data directory, imports
// cfg.Model, loads the active model into the service and resumes the
// learner from its checkpoint. It returns the store for the caller to
// close last.
func (s *Service) openStore() (*store.Store, error) {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	var keys []ed25519.PublicKey
	for _, k := range cfg.Trust {
		pub, err := model.ReadPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("trust %q: %w", k, err)
		}
		keys = append(keys, pub)
	}
	path := filepath.Join(cfg.DataDir, "linnet.db")
	st, err := store.Open(path, store.Options{Timeout: 5 * time.Second, Repair: true, Trusted: keys,
		Logger: s.base.With("component", "store")})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.loadModel(st); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func (s *Service) loadModel(st *store.Store) error {
	cfg := s.cfg
	if cfg.Model != "" {
		// --model imports the file and activates it unless the store
		// already serves something newer (an OTA update is not undone by a
		// restart with the old command line).
		_, file, err := model.ReadFile(cfg.Model)
		if err != nil {
			return fmt.Errorf("load model %q: %w", cfg.Model, err)
		}
		v, err := st.Put(file, "run --model")
		if err != nil {
			return fmt.Errorf("import model %q: %w", cfg.Model, err)
		}
		active, err := st.ActiveVersion()
		if err != nil {
			return err
		}
		if v > active {
			if err := st.Activate(v, "run --model"); err != nil {
				return fmt.Errorf("activate model %d: %w", v, err)
			}
		} else if v < active {
			s.log.Warn("--model is older than the active model; keeping the active one", "model", v, "active", active)
		}
	}
	m, _, err := st.Active()
	if errors.Is(err, store.ErrNoActive) && cfg.MQTT.Broker == "" && s.cur.Load() == nil {
		v, perr := st.Put(demoModel, "demo")
		if perr == nil {
			perr = st.Activate(v, "demo")
		}
		if perr != nil {
			return fmt.Errorf("activate the demo model: %w", perr)
		}
		s.log.Info("empty store: activated the demo model (houses: price_k from 6 features; replace it with --model)")
		m, _, err = st.Active()
	}
	if errors.Is(err, store.ErrNoActive) {
		if s.cur.Load() == nil {
			s.log.Warn("no active model: readings are rejected until one is activated", "store", st.Path())
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("active model: %w", err)
	}
	s.SetScorer(NewScorer(m))
	s.log.Info("serving", "model_version", m.Version, "scheme", m.Scheme, "features", len(m.Features), "loss", m.Loss)
	if !cfg.Learning.Enabled {
		return nil
	}
	l := NewLearner(m)
	state, err := st.LoadCheckpoint()
	switch {
	case err == nil:
		if err := l.(*modelLearner).l.UnmarshalBinary(state); err != nil {
			s.log.Error("checkpoint unreadable; learning starts from the model", "err", err)
			l = NewLearner(m)
		} else {
			s.log.Info("learning resumed from checkpoint", "updates", l.Updates(), "progressive_loss", l.Progressive())
			if l.Updates() > 0 {
				if sc, err := l.Serving(); err == nil {
					s.SetScorer(sc)
				} else {
					s.log.Error("serve the checkpointed weights", "err", err)
				}
			}
		}
	case errors.Is(err, store.ErrNoCheckpoint):
	default:
		s.log.Error("load checkpoint; learning starts from the model", "err", err)
	}
	s.SetLearner(l, versionedCheckpoint{st, m.Version}) // OTA hook: see ota.go
	s.m.loss.Set(l.Progressive())
	return nil
}
