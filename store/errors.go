package store

import "errors"

// Errors of opening and checking the file.
var (
	// ErrLocked is returned by Open when another process holds the file's
	// lock for longer than Options.Timeout (usually the daemon).
	ErrLocked = errors.New("store: file is locked by another process")
	// ErrDamaged is returned by Open and Verify when the file fails its
	// integrity check (bbolt pages, a stored model's CRC, a checkpoint's CRC).
	ErrDamaged = errors.New("store: file is damaged")
	// ErrFull is returned when a write would grow the file past
	// Options.MaxBytes; prune, or raise the limit.
	ErrFull = errors.New("store: file reached its size limit")
	// ErrEmpty is returned by a ReadOnly Open of a file that holds no linnet
	// data (created, but killed before its first write).
	ErrEmpty = errors.New("store: file holds no linnet data yet")
	// ErrLost is returned by Open when the store file is missing or empty
	// although its state record says a store existed. With Repair, Open
	// starts a fresh store from the record instead and Report().Err wraps it.
	ErrLost = errors.New("store: file is lost")
	// ErrDetached is returned by Health when the open file is no longer the
	// file at the store's path (deleted or replaced while open).
	ErrDetached = errors.New("store: file was deleted or replaced while open")
	// ErrClosed is returned when a Store is used after Close.
	ErrClosed = errors.New("store: closed")
)

// Errors of storing and activating models.
var (
	// ErrNotFound is returned when a model version is not in the store.
	ErrNotFound = errors.New("store: no such model version")
	// ErrNoActive is returned when no model has been activated yet.
	ErrNoActive = errors.New("store: no active model")
	// ErrNoPrevious is returned by Rollback when there is no earlier active
	// version to return to.
	ErrNoPrevious = errors.New("store: no previous version to roll back to")
	// ErrVersionExists is returned by Put when the version is already stored
	// with different bytes.
	ErrVersionExists = errors.New("store: version already stored with different contents")
	// ErrRejected is returned by Put and Activate when a model fails its
	// checks: it does not decode, its signature does not verify, it is
	// unsigned while Options.RequireSigned is set, or it is too large.
	ErrRejected = errors.New("store: model rejected")
)

// Errors of OTA installs.
var (
	// ErrNotActive is returned by Withdraw and SaveCheckpointFor when the
	// version they name is no longer the active one (something else was
	// activated meanwhile).
	ErrNotActive = errors.New("store: version is not the active one")
	// ErrWithdrawn is returned by Install for a version a rollback withdrew.
	ErrWithdrawn = errors.New("store: version was withdrawn")
	// ErrReplay is returned by InstallRollback for a rollback file this
	// store applied before; nothing changes.
	ErrReplay = errors.New("store: rollback file was already applied (replay)")
	// ErrOlder is returned by Install for a version older than Floor (the
	// active version, or the one that was active when the file lost it).
	ErrOlder = errors.New("store: version is older than the active one")
)

// Errors of checkpoints.
var (
	// ErrNoCheckpoint is returned by LoadCheckpoint when the active model has
	// no checkpoint.
	ErrNoCheckpoint = errors.New("store: no checkpoint for the active model")
)

// Errors of model names.
var (
	// ErrBadName is returned for a model name that is not
	// [a-z0-9][a-z0-9_-]{0,62}.
	ErrBadName = errors.New("store: bad model name")
	// ErrUnknownModel is returned by reads of a model the store does not
	// hold (nothing was ever stored under its name), wrapped together
	// with ErrNoActive.
	ErrUnknownModel = errors.New("store: no such model")
)

// Errors of device states.
var (
	// ErrNoDevice is returned when a device has no stored learner state.
	ErrNoDevice = errors.New("store: no state for this device")
	// ErrBadDevice is returned for a device id that is empty, longer
	// than MaxDeviceID or holds a NUL byte (MQTT topics hold none).
	ErrBadDevice = errors.New("store: bad device id")
)
