// Package store owns linnet's bbolt file: every model version a gateway was
// given (as the .lnm bytes it arrived as), the active pointer and the
// history of activations, and the online learner's checkpoints.
//
// # Use
//
//	s, err := store.Open(path, store.Options{Repair: true, Trusted: keys, Logger: log})
//	v, err := s.Put(file, store.SourceOTA)       // check, store (and retention)
//	err = s.Activate(v, store.SourceOTA)         // check again, switch, record
//	m, file, err := s.Active()                   // check again on every read
//	err = s.Rollback(store.SourceCLI)            // back to the previous active version
//	state, err := s.LoadCheckpoint()             // learner state of the active version
//	c := store.NewCheckpointer(s, 1000, 30*time.Second)
//	saved, err := c.Updated(1, learner.State)    // after each learning step
//	err = c.Flush(learner.State)                 // on shutdown, then
//	err = s.Close()                              // close bbolt last
//
// A gateway serves several models, each with a name (CheckName): the
// methods above act on DefaultModel, and the same methods on a Model handle
// act on one named model:
//
//	hvac, err := s.Model("hvac")                 // ErrBadName for a bad name
//	prev, err := hvac.Install(file, store.SourceOTA, reason, false)
//	names, err := s.Models()                     // DefaultModel first
//
// Every rule (no downgrade, withdrawn versions, rollback replay, retention)
// holds per model, and no call on one model changes another.
//
// Per-device learner states (model.Devices) are kept per model too
// (devices.go): hvac.SaveDevices(batch) writes a batch in one transaction
// (model.DeviceConfig.Evict, and the save function of Devices.Checkpoint),
// hvac.LoadDevice is model.DeviceConfig.Load, and Devices, Device,
// ResetDevice and PruneDevices serve `linnet models devices`.
//
// List, History, Prune and Verify serve `linnet models`. Errors are the
// sentinels of errors.go (errors.Is); model check failures wrap both
// ErrRejected and the model package's error (model.ErrChecksum,
// model.ErrUntrustedKey, ...).
//
// # Layout
//
// One bbolt file with five buckets per model:
//
//	models       version (8 bytes big-endian) -> .lnm file bytes
//	meta         "active" -> version; "previous" -> the rollback stack;
//	             "withdrawn", "consumed"
//	history      sequence -> Event (JSON), the newest MaxHistory kept
//	checkpoints  model version -> CRC-32C | saved time | learner state
//	devices      device id -> CRC-32C | times, version, updates | state
//
// The default model's buckets have these names (the single-model layout,
// so an older store opens as the default model unchanged); model "hvac"'s
// are "models/hvac", "meta/hvac" and so on (names.go).
//
// A checkpoint belongs to the model version that was active when it was
// saved, so a new model never starts from another model's learner state,
// and a rollback resumes the state the older model had.
//
// # Guarantees
//
// Every change is one bbolt transaction, committed with fsync (NoSync is
// never set): after a crash or a SIGKILL the file holds either the state
// before a call or the state after it. Models are checked (CRC-32C, and the
// Ed25519 signature against Options.Trusted when the file is signed) when
// they are stored, when they are activated and when they are read back.
// Checkpoint values carry their own CRC-32C.
//
// Open takes bbolt's file lock with Options.Timeout (DefaultTimeout if 0),
// so a second process (the CLI while the daemon runs) gets ErrLocked, naming
// the file and, on Linux, the process that holds it, instead of hanging.
// Before bbolt reads the file, Open checks its pages itself (pages.go): the
// meta pages, the free list and every page of the tree, each number bounded
// by the file's size, because bbolt trusts them (a flipped free-list
// overflow count makes its first commit allocate gigabytes and never
// return). Open then checks the file (bbolt's page check and every stored
// model's CRC). A damaged file gives ErrDamaged; with Options.Repair it is
// renamed aside (path + ".damaged-<UTC time>") with an error log line, and
// a fresh file is built from what a page walk without bbolt still reads:
// every model, checkpoint and history event that passes its checks (one
// bad event costs that event). Report says what was lost.
//
// # State record
//
// What must survive a damaged file (the active version, the rollback
// stack, the withdrawn versions, the consumed rollbacks, the stored
// versions) is kept twice, each copy checksummed with a generation number:
// in the file and in path + RecordSuffix next to it (record.go). The newer
// copy wins at Open, so a repaired file never serves a withdrawn version
// nor one older than the last active one (Floor), and a missing or empty
// file whose record exists is ErrLost (with Repair: a fresh store that
// remembers the record), not silently new. Detached notices a file deleted
// while open, Recreate writes it back from the open copy, and Health
// reports both and failed record writes.
//
// # Size
//
// The file never shrinks, and on 32-bit ARM the map must stay well under
// 1 GB. Put keeps at most Options.Keep versions (pruning the oldest, never
// the active one nor its predecessor), refuses models over
// Options.MaxModelBytes, the history keeps Options.MaxHistory events, and
// bbolt's MaxSize stops the file at Options.MaxBytes.
//
// # Memory and concurrency
//
// A Store is safe for concurrent use. Nothing it returns points into the
// bbolt map: values are copied out before a transaction ends, and no
// transaction is held across decoding, signature checks or I/O of the
// caller's. The caller owns every slice it gets.
//
// Checkpoints cost two fsyncs each (slow on SD cards, and they wear
// flash): a Checkpointer writes them at most every N updates or T seconds.
package store
