package onnx

import (
	"math"

	"github.com/linnet-edge/linnet/model"
	pb "github.com/linnet-edge/linnet/model/onnx/onnxpb"
)

// The ops that map onto the model's Preprocessing: OneHotEncoder of a
// string input column, Imputer of numeric ones, and the column selection
// around them (Gather, ArrayFeatureExtractor).

func opOneHotEncoder(n *nodeCtx) error {
	a, v, err := n.unary("cats_strings", "cats_int64s", "zeros")
	if err != nil {
		return err
	}
	cats, err := a.classLabels("cats_int64s", "cats_strings")
	if err != nil {
		return err
	}
	if a.has("cats_int64s") {
		// Integer categories of a numeric input column (skl2onnx casts it
		// to INT64 first): the column becomes categorical, matched by
		// number (3 and "3" are the same category for linnet's encoder).
		if v.kind == kCols {
			if codes, ok := n.g.codes(v); ok {
				v = codes
			}
		}
		if v.kind != kCodes {
			return n.fail(ErrUnsupported, "integer categories of %s", v.kind)
		}
	} else if v.kind != kStrings {
		return n.fail(ErrUnsupported, "string categories of %s", v.kind)
	}
	if v.width() != 1 {
		return n.fail(ErrUnsupported, "one-hot encoding of %d columns at once: linnet encodes one input column per OneHotEncoder", v.width())
	}
	if len(cats) == 0 {
		return n.fail(ErrMalformed, "no categories")
	}
	if len(n.g.feats)+len(cats) > model.MaxFeatures {
		return n.fail(ErrTooLarge, "more than %d features", model.MaxFeatures)
	}
	// zeros=0 makes ONNX Runtime fail on an unseen category; linnet sets
	// no feature for it (and counts it), as zeros=1 does.
	if _, err := a.int("zeros", 1); err != nil {
		return err
	}
	c := v.strs[0]
	if _, done := n.g.cats[c]; done {
		return n.fail(ErrUnsupported, "column %q is one-hot encoded twice", n.g.names[c])
	}
	seen := make(map[string]bool, len(cats))
	for _, cat := range cats {
		if seen[cat] {
			return n.fail(ErrMalformed, "category %q appears twice", cat)
		}
		seen[cat] = true
	}
	if n.g.cats == nil {
		n.g.cats = map[int][]string{}
	}
	n.g.cats[c] = cats
	n.g.str[c] = true // an integer column is categorical from now on
	out := &value{kind: kCols, cols: make([]col, len(cats)), extra: !v.flat}
	for i := range cats {
		out.cols[i] = col{base: len(n.g.feats), s: 1}
		n.g.feats = append(n.g.feats, feature{column: c, cat: i, onehot: true})
	}
	n.set(0, out)
	return nil
}

func opImputer(n *nodeCtx) error {
	a, v, err := n.unary("imputed_value_floats", "imputed_value_int64s", "replaced_value_float", "replaced_value_int64")
	if err != nil {
		return err
	}
	if a.has("imputed_value_int64s") || a.has("replaced_value_int64") {
		return n.fail(ErrUnsupported, "integer imputation: linnet imputes float columns (missing = NaN)")
	}
	// The attribute's default is 0.0: only NaN is what linnet calls missing.
	at, err := a.get("replaced_value_float", pb.AttributeProto_FLOAT)
	if err != nil {
		return err
	}
	if at == nil || !math.IsNaN(float64(at.GetF())) {
		return n.fail(ErrUnsupported, "replaced_value_float is not NaN: linnet imputes missing values only")
	}
	if v.kind != kCols {
		return n.fail(ErrUnsupported, "imputation of %s", v.kind)
	}
	// floats checks finiteness; the fill values are finite numbers.
	fills, err := a.floats("imputed_value_floats")
	if err != nil {
		return err
	}
	if len(fills) != 1 && len(fills) != len(v.cols) {
		return n.fail(ErrMalformed, "%d imputed values for %d columns", len(fills), len(v.cols))
	}
	if n.g.fill == nil {
		n.g.fill = map[int]float64{}
	}
	for j, c := range v.cols {
		if c.base < 0 || n.g.feats[c.base].onehot {
			return n.fail(ErrUnsupported, "column %d is not a numeric input column", j)
		}
		fill := fills[0]
		if len(fills) > 1 {
			fill = fills[j]
		}
		raw := fill*c.s + c.m // the value in the input column's own units
		column := n.g.feats[c.base].column
		if old, ok := n.g.fill[column]; ok && old != raw {
			return n.fail(ErrUnsupported, "column %q is imputed twice, with %g and %g", n.g.names[column], old, raw)
		}
		n.g.fill[column] = raw
	}
	n.set(0, v)
	return nil
}

// opGather selects columns (axis 1) of the features or of string columns.
func opGather(n *nodeCtx) error {
	if err := n.arity(2, 2, 1); err != nil {
		return err
	}
	a, err := n.attrs("axis")
	if err != nil {
		return err
	}
	axis, err := a.int("axis", 0)
	if err != nil {
		return err
	}
	if axis != 1 {
		return n.fail(ErrUnsupported, "axis %d (linnet selects columns: axis 1)", axis)
	}
	return selectColumns(n)
}

// selectColumns picks the columns input 1 lists from input 0.
func selectColumns(n *nodeCtx) error {
	x, err := n.data(0)
	if err != nil {
		return err
	}
	t, err := n.konst(1)
	if err != nil {
		return err
	}
	if t.i == nil {
		return n.fail(ErrMalformed, "the indices are not integers")
	}
	w := int64(x.width())
	if x.extra || x.flat || (x.kind != kCols && x.kind != kStrings && x.kind != kCodes && x.kind != kLin && x.kind != kSig) {
		return n.fail(ErrUnsupported, "columns of %s", x.kind)
	}
	out := &value{kind: x.kind, flat: n.op == "Gather" && len(t.dims) == 0}
	for _, j := range t.i {
		if j < 0 {
			j += w
		}
		if j < 0 || j >= w {
			return n.fail(ErrMalformed, "column %d of %d", j, w)
		}
		switch x.kind {
		case kCols:
			out.cols = append(out.cols, x.cols[j])
		case kStrings, kCodes:
			out.strs = append(out.strs, x.strs[j])
		default:
			out.forms = append(out.forms, x.forms[j])
		}
	}
	n.set(0, out)
	return nil
}

// codes returns v as integer codes when every column is a numeric input
// column as it came in (not shifted, scaled or imputed).
func (g *graph) codes(v *value) (*value, bool) {
	out := &value{kind: kCodes, flat: v.flat, strs: make([]int, len(v.cols))}
	for j, c := range v.cols {
		if c.base < 0 || g.feats[c.base].onehot || c.m != 0 || c.s != 1 {
			return nil, false
		}
		out.strs[j] = g.feats[c.base].column
		if _, imputed := g.fill[out.strs[j]]; imputed {
			return nil, false
		}
	}
	return out, true
}
