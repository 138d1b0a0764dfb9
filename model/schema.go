package model

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// maxNamed is how many feature names an error lists before "and N more".
const maxNamed = 8

// Vector fills dst (len(dst) == len(m.Features)) with the values of a
// reading given by name, in model order. It returns an error wrapping
// ErrMissingFeature or ErrUnknownFeature that names the features concerned,
// ErrNotFinite naming a NaN or infinite value, or ErrFeatureCount if dst
// has the wrong length. It does not allocate unless it fails.
//
// A model with Preprocessing takes its input columns instead and imputes
// missing ones as its policy says (this path allocates; a server should
// keep one Encoder per model and call Encode, which also takes category
// strings and reports what it imputed).
func (m *Model) Vector(dst []float32, named map[string]float64) error {
	if m.Preprocessing != nil {
		vals := make(map[string]Value, len(named))
		for k, v := range named {
			vals[k] = Num(v)
		}
		return NewEncoder(m).Encode(dst, vals, nil)
	}
	if len(dst) != len(m.Features) {
		return fmt.Errorf("%w: vector of %d for %d features", ErrFeatureCount, len(dst), len(m.Features))
	}
	found := 0
	var missing []string
	for i, f := range m.Features {
		v, ok := named[f]
		if !ok {
			missing = append(missing, f)
			continue
		}
		found++
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
			return fmt.Errorf("%w: %q is %v", ErrNotFinite, f, v)
		}
		dst[i] = float32(v)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s (the model needs %d)", ErrMissingFeature, listNames(missing), len(m.Features))
	}
	if found != len(named) {
		known := make(map[string]bool, len(m.Features))
		for _, f := range m.Features {
			known[f] = true
		}
		var unknown []string
		for k := range named {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		slices.Sort(unknown)
		return fmt.Errorf("%w: %s (the model knows %s)", ErrUnknownFeature, listNames(unknown), listNames(m.Features))
	}
	return nil
}

// Positional fills dst with a reading given in model order, checking its
// length and that every value is finite (an error wrapping
// ErrFeatureCount or ErrNotFinite, naming the feature). A model with
// Preprocessing takes one value per input column (Preprocessing.Inputs),
// NaN standing for a missing value.
func (m *Model) Positional(dst []float32, values []float64) error {
	if m.Preprocessing != nil {
		vals := make([]Value, len(values))
		for i, v := range values {
			if !math.IsNaN(v) {
				vals[i] = Num(v)
			}
		}
		return NewEncoder(m).EncodeValues(dst, vals, nil)
	}
	if len(values) != len(m.Features) {
		return fmt.Errorf("%w: got %d values, the model needs %d (%s)", ErrFeatureCount, len(values), len(m.Features), listNames(m.Features))
	}
	if len(dst) != len(m.Features) {
		return fmt.Errorf("%w: vector of %d for %d features", ErrFeatureCount, len(dst), len(m.Features))
	}
	for i, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
			return fmt.Errorf("%w: value %d (%q) is %v", ErrNotFinite, i, m.Features[i], v)
		}
		dst[i] = float32(v)
	}
	return nil
}

// CheckVector reports whether x can be given to a Predictor of m: the right
// length and every value finite.
func (m *Model) CheckVector(x []float32) error {
	if len(x) != len(m.Features) {
		return fmt.Errorf("%w: got %d values, the model needs %d", ErrFeatureCount, len(x), len(m.Features))
	}
	for i, v := range x {
		if !finite32(v) {
			return fmt.Errorf("%w: value %d (%q) is %v", ErrNotFinite, i, m.Features[i], v)
		}
	}
	return nil
}

// Index returns the position of feature name, or -1.
func (m *Model) Index(name string) int { return slices.Index(m.Features, name) }

func listNames(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i == maxNamed {
			fmt.Fprintf(&b, " and %d more", len(names)-maxNamed)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	return b.String()
}
