package model

import (
	"errors"
	"fmt"
	"io"
)

// RowSource yields rows of features and a target, one at a time: a
// *CSVReader streams them from a file, a *Dataset from memory.
type RowSource interface {
	Features() []string // names, in the order Next fills x
	Target() string
	// Next fills x (len(Features()) values) and returns the target; it
	// returns io.EOF after the last row.
	Next(x []float32) (y float32, err error)
}

// Rewinder is a RowSource that can start over from its first row;
// streaming training and evaluation read their source more than once.
type Rewinder interface {
	RowSource
	Reset() error
}

// Dataset is a set of rows held in memory, row-major. It is a Rewinder
// over its rows.
type Dataset struct {
	Names []string  // feature names
	Label string    // target name
	X     []float32 // len(Y) rows of len(Names) values
	Y     []float32
	pos   int
}

// Len returns the number of rows.
func (d *Dataset) Len() int { return len(d.Y) }

// Row returns row i's features; the slice aliases d.X.
func (d *Dataset) Row(i int) []float32 { n := len(d.Names); return d.X[i*n : i*n+n] }

// Features returns the feature names.
func (d *Dataset) Features() []string { return d.Names }

// Target returns the target's name.
func (d *Dataset) Target() string { return d.Label }

// Next copies the next row into x.
func (d *Dataset) Next(x []float32) (float32, error) {
	if d.pos >= len(d.Y) {
		return 0, io.EOF
	}
	copy(x, d.Row(d.pos))
	d.pos++
	return d.Y[d.pos-1], nil
}

// Reset rewinds Next to the first row.
func (d *Dataset) Reset() error { d.pos = 0; return nil }

// ReadDataset reads every remaining row of src into memory.
func ReadDataset(src RowSource) (*Dataset, error) {
	d := &Dataset{Names: src.Features(), Label: src.Target()}
	x := make([]float32, len(d.Names))
	for {
		y, err := src.Next(x)
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		if err != nil {
			return nil, err
		}
		d.X = append(d.X, x...)
		d.Y = append(d.Y, y)
	}
}

// InHoldout reports whether row i (0-based, in source order) belongs to the
// holdout fraction frac under seed. The split is a hash of (seed, i), so it
// is the same whether the rows are streamed or held in memory, and train,
// eval and plot can all find the same rows again.
func InHoldout(seed uint64, frac float64, i int64) bool {
	if frac <= 0 {
		return false
	}
	h := splitmix64(seed ^ splitmix64(uint64(i)))
	return float64(h>>11)/(1<<53) < frac
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// liner is a source that can say which line of a file a row came from.
type liner interface{ Line() int }

// rowError wraps a problem with a row's target in a *CSVError when src is
// a CSV file, so the message names the line and column.
func rowError(src RowSource, row int64, reason string) error {
	if c, ok := src.(*CSVReader); ok {
		col := 0
		for i, k := range c.cols {
			if k == colTarget {
				col = i + 1
			}
		}
		return &CSVError{Line: c.Line(), Column: col, Name: c.Target(), Reason: reason}
	}
	if l, ok := src.(liner); ok {
		return fmt.Errorf("line %d: %s", l.Line(), reason)
	}
	return fmt.Errorf("row %d: %s", row+1, reason)
}
