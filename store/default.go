package store

import (
	"time"

	"github.com/linnet-edge/linnet/model"
)

// The Store's own model methods act on DefaultModel: they are the API of
// the single-model layout, kept for callers that serve one model. Each is
// the Model method of the same name on s.Default().

// Put is Model.Put on the default model.
func (s *Store) Put(file []byte, source string) (int64, error) { return s.Default().Put(file, source) }

// Activate is Model.Activate on the default model.
func (s *Store) Activate(v int64, source string) error { return s.Default().Activate(v, source) }

// Rollback is Model.Rollback on the default model.
func (s *Store) Rollback(source string) error { return s.Default().Rollback(source) }

// Active is Model.Active on the default model.
func (s *Store) Active() (*model.Model, []byte, error) { return s.Default().Active() }

// ActiveVersion is Model.ActiveVersion on the default model.
func (s *Store) ActiveVersion() (int64, error) { return s.Default().ActiveVersion() }

// Get is Model.Get on the default model.
func (s *Store) Get(v int64) ([]byte, error) { return s.Default().Get(v) }

// List is Model.List on the default model.
func (s *Store) List() ([]Info, error) { return s.Default().List() }

// History is Model.History on the default model.
func (s *Store) History() ([]Event, error) { return s.Default().History() }

// Prune is Model.Prune on the default model.
func (s *Store) Prune(keep int) error { return s.Default().Prune(keep) }

// Install is Model.Install on the default model.
func (s *Store) Install(file []byte, source, reason string, rollback bool) (int64, error) {
	return s.Default().Install(file, source, reason, rollback)
}

// InstallRollback is Model.InstallRollback on the default model.
func (s *Store) InstallRollback(file []byte, gateway, source string) (*model.Rollback, error) {
	return s.Default().InstallRollback(file, gateway, source)
}

// Consumed is Model.Consumed on the default model.
func (s *Store) Consumed(digest [32]byte) (bool, error) { return s.Default().Consumed(digest) }

// Withdraw is Model.Withdraw on the default model.
func (s *Store) Withdraw(v int64, source, reason string) (int64, error) {
	return s.Default().Withdraw(v, source, reason)
}

// Withdrawn is Model.Withdrawn on the default model.
func (s *Store) Withdrawn(v int64) (bool, error) { return s.Default().Withdrawn(v) }

// Record is Model.Record on the default model.
func (s *Store) Record(e Event) error { return s.Default().Record(e) }

// Floor is Model.Floor on the default model.
func (s *Store) Floor() (int64, error) { return s.Default().Floor() }

// SaveCheckpoint is Model.SaveCheckpoint on the default model.
func (s *Store) SaveCheckpoint(state []byte) error { return s.Default().SaveCheckpoint(state) }

// SaveCheckpointFor is Model.SaveCheckpointFor on the default model.
func (s *Store) SaveCheckpointFor(v int64, state []byte) error {
	return s.Default().SaveCheckpointFor(v, state)
}

// LoadCheckpoint is Model.LoadCheckpoint on the default model.
func (s *Store) LoadCheckpoint() ([]byte, error) { return s.Default().LoadCheckpoint() }

// Checkpoint is Model.Checkpoint on the default model.
func (s *Store) Checkpoint() ([]byte, time.Time, error) { return s.Default().Checkpoint() }

// SaveRecent is Model.SaveRecent on the default model.
func (s *Store) SaveRecent(names []string, rows [][]float32) error {
	return s.Default().SaveRecent(names, rows)
}

// Recent is Model.Recent on the default model.
func (s *Store) Recent() ([]string, [][]float32, error) { return s.Default().Recent() }
