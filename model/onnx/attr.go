package onnx

import (
	"fmt"
	"math"
	"slices"

	pb "github.com/linnet-edge/linnet/model/onnx/onnxpb"
)

// attrs are one node's attributes, checked against the ones its op allows.
type attrs struct {
	node *nodeCtx
	m    map[string]*pb.AttributeProto
}

func (n *nodeCtx) attrs(allowed ...string) (attrs, error) {
	list := n.p.GetAttribute()
	if len(list) > maxAttributes {
		return attrs{}, n.fail(ErrTooLarge, "%d attributes, limit %d", len(list), maxAttributes)
	}
	a := attrs{node: n, m: make(map[string]*pb.AttributeProto, len(list))}
	for _, at := range list {
		name := at.GetName()
		if _, dup := a.m[name]; dup {
			return attrs{}, n.fail(ErrMalformed, "attribute %q appears twice", name)
		}
		if at.GetRefAttrName() != "" {
			return attrs{}, n.fail(ErrUnsupported, "attribute %q refers to a function's attribute", name)
		}
		if !slices.Contains(allowed, name) {
			return attrs{}, n.fail(ErrUnsupported, "attribute %q is not supported", name)
		}
		a.m[name] = at
	}
	return a, nil
}

func (a attrs) has(name string) bool { _, ok := a.m[name]; return ok }

// get returns attribute name if present, checking its type.
func (a attrs) get(name string, t pb.AttributeProto_AttributeType) (*pb.AttributeProto, error) {
	at, ok := a.m[name]
	if !ok {
		return nil, nil
	}
	if at.GetType() != t {
		return nil, a.node.fail(ErrMalformed, "attribute %q is %v, want %v", name, at.GetType(), t)
	}
	return at, nil
}

func (a attrs) int(name string, def int64) (int64, error) {
	at, err := a.get(name, pb.AttributeProto_INT)
	if at == nil || err != nil {
		return def, err
	}
	return at.GetI(), nil
}

func (a attrs) float(name string, def float64) (float64, error) {
	at, err := a.get(name, pb.AttributeProto_FLOAT)
	if at == nil || err != nil {
		return def, err
	}
	return float64(at.GetF()), nil
}

func (a attrs) str(name, def string) (string, error) {
	at, err := a.get(name, pb.AttributeProto_STRING)
	if at == nil || err != nil {
		return def, err
	}
	return string(at.GetS()), nil
}

// floats returns a FLOATS attribute as float64, checking every value is
// finite.
func (a attrs) floats(name string) ([]float64, error) {
	at, err := a.get(name, pb.AttributeProto_FLOATS)
	if at == nil || err != nil {
		return nil, err
	}
	out := make([]float64, len(at.GetFloats()))
	for i, v := range at.GetFloats() {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, a.node.fail(ErrUnsupported, "attribute %q: value %d is %v", name, i, v)
		}
		out[i] = float64(v)
	}
	return out, nil
}

func (a attrs) ints(name string) ([]int64, error) {
	at, err := a.get(name, pb.AttributeProto_INTS)
	if at == nil || err != nil {
		return nil, err
	}
	return at.GetInts(), nil
}

func (a attrs) strs(name string) ([]string, error) {
	at, err := a.get(name, pb.AttributeProto_STRINGS)
	if at == nil || err != nil {
		return nil, err
	}
	out := make([]string, len(at.GetStrings()))
	for i, s := range at.GetStrings() {
		out[i] = string(s)
	}
	return out, nil
}

// classLabels reads classlabels_ints / classlabels_strings (or the
// ZipMap spelling classlabels_int64s) as strings.
func (a attrs) classLabels(intsName, stringsName string) ([]string, error) {
	ints, err := a.ints(intsName)
	if err != nil {
		return nil, err
	}
	strs, err := a.strs(stringsName)
	if err != nil {
		return nil, err
	}
	if ints != nil && strs != nil {
		return nil, a.node.fail(ErrMalformed, "both %s and %s", intsName, stringsName)
	}
	if strs != nil {
		return strs, nil
	}
	out := make([]string, len(ints))
	for i, v := range ints {
		out[i] = fmt.Sprint(v)
	}
	return out, nil
}
