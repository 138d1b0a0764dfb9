//go:build !unix

package store

import (
	"os"
	"time"
)

// unlockFile does nothing: bbolt's lock elsewhere is released with the file.
func unlockFile(*os.File) {}

// lockFile does nothing: bbolt takes its own lock when it opens the file.
func lockFile(*os.File, bool, time.Duration) error { return nil }
