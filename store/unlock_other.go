//go:build !unix

package store

import "os"

// unlockFile does nothing: bbolt's lock elsewhere is released with the file.
func unlockFile(*os.File) {}
