package daemon

import (
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

// openStore opens the model store under the data directory, imports
// cfg.Model, loads the active model into the service and resumes the
// learner from its checkpoint. It returns the store for the caller to
// close last.
func (s *Service) openStore() (*store.Store, error) {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// The trusted keys are read once: the store verifies signed
	// rollbacks with them, OTA every model file.
	s.trust = nil
	for _, k := range cfg.Trust {
		pub, err := model.ReadPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("trust %q: %w", k, err)
		}
		s.trust = append(s.trust, pub)
	}
	path := filepath.Join(cfg.DataDir, "linnet.db")
	if err := s.checkLost(path); err != nil {
		return nil, err
	}
	st, err := store.Open(path, store.Options{Timeout: 5 * time.Second, Repair: true, Trusted: s.trust,
		Logger: s.base.With("component", "store")})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.storeOpened(st)
	for _, mdl := range s.models {
		if mdl.st, err = st.Model(mdl.name); err == nil {
			err = s.loadModel(mdl)
		}
		if err != nil {
			st.Close()
			if len(s.models) > 1 {
				err = fmt.Errorf("model %s: %w", mdl.name, err)
			}
			return nil, err
		}
	}
	return st, nil
}

// loadModel imports mdl's file, loads its active version into its owner
// and resumes its learner from the checkpoint.
func (s *Service) loadModel(mdl *served) error {
	st := mdl.st
	if file := mdl.cfg.File; file != "" {
		// The file is imported and activated unless the store already
		// serves something newer (an OTA update is not undone by a
		// restart with the old command line).
		_, b, err := model.ReadFile(file)
		if err != nil {
			return fmt.Errorf("load model %q: %w", file, err)
		}
		v, err := st.Put(b, "run --model")
		if err != nil {
			return fmt.Errorf("import model %q: %w", file, err)
		}
		active, err := st.ActiveVersion()
		if err != nil && !errors.Is(err, store.ErrNoActive) {
			return err
		}
		if v > active {
			if err := st.Activate(v, "run --model"); err != nil {
				return fmt.Errorf("activate model %d: %w", v, err)
			}
		} else if v < active {
			s.log.Warn("the model file is older than the active model; keeping the active one", "model", mdl.name, "file", file, "version", v, "active", active)
		}
	}
	m, _, err := st.Active()
	if errors.Is(err, store.ErrNoActive) && s.cfg.MQTT.Broker == "" && mdl.name == store.DefaultModel && mdl.own.Current() == nil {
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
		if mdl.own.Current() == nil {
			s.log.Warn("no active model: readings are rejected until one is activated", "model", mdl.name, "store", st.Store().Path())
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("active model: %w", err)
	}
	mdl.own.Install(m, st)
	s.log.Info("serving", "model", mdl.name, "model_version", m.Version, "scheme", m.Scheme, "features", len(m.Features), "loss", m.Loss)
	if _, loss, ok := mdl.own.Stats(); ok {
		mdl.loss.Set(loss)
	}
	return nil
}
