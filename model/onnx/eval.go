package onnx

import (
	"fmt"
	"math"
	"slices"
	"strings"

	pb "github.com/linnet-edge/linnet/model/onnx/onnxpb"
)

// nodeCtx is the node being evaluated.
type nodeCtx struct {
	g    *graph
	p    *pb.NodeProto
	name string
	op   string
}

func (n *nodeCtx) fail(kind error, format string, a ...any) error {
	return &NodeError{Node: n.name, Op: n.op, Err: kind, Reason: fmt.Sprintf(format, a...)}
}

// in returns input i, nil if it is absent (optional and empty).
func (n *nodeCtx) in(i int) *value {
	ins := n.p.GetInput()
	if i >= len(ins) || ins[i] == "" {
		return nil
	}
	return n.g.vals[ins[i]]
}

// arity checks the node has between lo and hi inputs and exactly outs
// outputs (-1: at least one).
func (n *nodeCtx) arity(lo, hi, outs int) error {
	ni, no := len(n.p.GetInput()), len(n.p.GetOutput())
	if ni < lo || ni > hi {
		return n.fail(ErrMalformed, "%d inputs, want %d to %d", ni, lo, hi)
	}
	if (outs >= 0 && no != outs) || no == 0 {
		return n.fail(ErrMalformed, "%d outputs, want %d", no, max(outs, 1))
	}
	return nil
}

// data returns input i, which must be a data value (not a constant).
func (n *nodeCtx) data(i int) (*value, error) {
	v := n.in(i)
	if v == nil {
		return nil, n.fail(ErrMalformed, "input %d is missing", i)
	}
	if v.kind == kConst {
		return nil, n.fail(ErrUnsupported, "input %d (%q) is a constant where linnet expects the features", i, n.p.Input[i])
	}
	return v, nil
}

// unary checks a node of one input and one output, its attributes, and
// that its input is a data value.
func (n *nodeCtx) unary(allowed ...string) (attrs, *value, error) {
	if err := n.arity(1, 1, 1); err != nil {
		return attrs{}, nil, err
	}
	a, err := n.attrs(allowed...)
	if err != nil {
		return attrs{}, nil, err
	}
	v, err := n.data(0)
	return a, v, err
}

// axes returns the axes attribute, or input 1 (from opset 13 on).
func (n *nodeCtx) axes(a attrs) ([]int64, error) {
	if len(n.p.Input) < 2 {
		return a.ints("axes")
	}
	t, err := n.konst(1)
	if err != nil {
		return nil, err
	}
	if t.i == nil {
		return nil, n.fail(ErrMalformed, "the axes are not integers")
	}
	return t.i, nil
}

// konst returns input i, which must be a numeric constant.
func (n *nodeCtx) konst(i int) (*tensor, error) {
	v := n.in(i)
	if v == nil {
		return nil, n.fail(ErrMalformed, "input %d is missing", i)
	}
	if v.kind != kConst {
		return nil, n.fail(ErrUnsupported, "input %d (%q) is %s where linnet expects a constant (weights must be initializers)", i, n.p.Input[i], v.kind)
	}
	if v.c.s != nil {
		return nil, n.fail(ErrMalformed, "input %d (%q) holds strings, want numbers", i, n.p.Input[i])
	}
	for _, x := range v.c.f {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, n.fail(ErrUnsupported, "constant %q holds %v", n.p.Input[i], x)
		}
	}
	return v.c, nil
}

func (n *nodeCtx) set(i int, v *value) { n.g.vals[n.p.Output[i]] = v }

// eval evaluates node i symbolically.
func (g *graph) eval(p *pb.NodeProto, i int) error {
	n := &nodeCtx{g: g, p: p, name: nodeName(p, i), op: p.GetOpType()}
	domain := p.GetDomain()
	if domain == domainONNX {
		domain = ""
	}
	if domain != "" && domain != domainML {
		return n.fail(ErrUnsupported, "domain %q: linnet knows ai.onnx and ai.onnx.ml", domain)
	}
	if _, ok := g.opset[domain]; !ok {
		return n.fail(ErrMalformed, "domain %q is not among the model's opset imports", domain)
	}
	fn, ok := ops[domain+"/"+n.op]
	if !ok {
		if domain == "" && nonLinear[n.op] {
			return n.fail(ErrUnsupported, "%s is not linear: linnet serves linear models (and a final Sigmoid)", n.op)
		}
		return n.fail(ErrUnsupported, "op %s is not one linnet imports", strings.TrimPrefix(domain+"."+n.op, "."))
	}
	g.ops = append(g.ops, n.op)
	return fn(n)
}

var nonLinear = map[string]bool{
	"Relu": true, "Tanh": true, "LeakyRelu": true, "Elu": true, "Selu": true, "Exp": true, "Log": true,
	"Pow": true, "Sqrt": true, "Abs": true, "Max": true, "Min": true, "Clip": true, "Where": true,
	"Conv": true, "LSTM": true, "GRU": true, "HardSigmoid": true, "Softplus": true, "Gelu": true,
}

var ops map[string]func(*nodeCtx) error

func init() {
	ops = map[string]func(*nodeCtx) error{
		"/Identity":                         opIdentity,
		"/Cast":                             opCast,
		"/Constant":                         opConstant,
		"/Reshape":                          opReshape,
		"/Flatten":                          opFlatten,
		"/Squeeze":                          opSqueeze,
		"/Unsqueeze":                        opSqueeze,
		"/Concat":                           opConcat,
		"/Add":                              opArith,
		"/Sub":                              opArith,
		"/Mul":                              opArith,
		"/Div":                              opArith,
		"/MatMul":                           opMatMul,
		"/Gemm":                             opGemm,
		"/Sigmoid":                          opSigmoid,
		"/Softmax":                          opSoftmax,
		"/ArgMax":                           opArgMax,
		"/Gather":                           opGather,
		"/Abs":                              opAbs,
		"/ReduceSum":                        opReduceSum,
		domainML + "/OneHotEncoder":         opOneHotEncoder,
		domainML + "/Imputer":               opImputer,
		domainML + "/Scaler":                opScaler,
		domainML + "/FeatureVectorizer":     opConcat,
		domainML + "/LinearRegressor":       opLinearRegressor,
		domainML + "/LinearClassifier":      opLinearClassifier,
		domainML + "/Normalizer":            opNormalizer,
		domainML + "/ZipMap":                opZipMap,
		domainML + "/Cast":                  opCast,
		domainML + "/ArrayFeatureExtractor": opArrayFeatureExtractor,
	}
}

func opIdentity(n *nodeCtx) error {
	if err := n.arity(1, 1, 1); err != nil {
		return err
	}
	if _, err := n.attrs(); err != nil {
		return err
	}
	n.set(0, n.in(0))
	return nil
}

func opCast(n *nodeCtx) error {
	if err := n.arity(1, 1, 1); err != nil {
		return err
	}
	a, err := n.attrs("to", "saturate", "cast_to")
	if err != nil {
		return err
	}
	v := n.in(0)
	if v == nil {
		return n.fail(ErrMalformed, "input 0 is missing")
	}
	if n.p.GetDomain() == domainML { // ai.onnx.ml Cast is a map-to-tensor cast
		return n.fail(ErrUnsupported, "ai.onnx.ml Cast")
	}
	to, err := a.int("to", -1)
	if err != nil {
		return err
	}
	switch dt := pb.TensorProto_DataType(to); {
	case v.kind == kLabel:
	case v.kind == kStrings && dt == pb.TensorProto_STRING:
	case dt == pb.TensorProto_FLOAT || dt == pb.TensorProto_DOUBLE:
		if v.kind == kConst {
			c := *v.c
			c.i, c.s, c.dtype = nil, nil, dt
			if v.c.s != nil {
				return n.fail(ErrUnsupported, "a cast of strings to numbers")
			}
			v = &value{kind: kConst, c: &c}
		}
	case v.kind == kCodes && (dt == pb.TensorProto_INT64 || dt == pb.TensorProto_INT32):
	case v.kind == kCols && (dt == pb.TensorProto_INT64 || dt == pb.TensorProto_INT32):
		codes, ok := n.g.codes(v)
		if !ok {
			return n.fail(ErrUnsupported, "a cast of computed values to %v would round them", dt)
		}
		v = codes // integer categories on their way to a OneHotEncoder
	case v.kind == kConst && (dt == pb.TensorProto_INT64 || dt == pb.TensorProto_INT32):
		if v.c.s != nil {
			return n.fail(ErrUnsupported, "a cast of strings to numbers")
		}
		c := &tensor{dtype: dt, dims: v.c.dims, f: make([]float64, len(v.c.f)), i: make([]int64, len(v.c.f))}
		for k, x := range v.c.f {
			c.f[k] = math.Trunc(x)
			c.i[k] = int64(c.f[k])
		}
		v = &value{kind: kConst, c: c}
	default:
		return n.fail(ErrUnsupported, "a cast of %s to %v would round them", v.kind, dt)
	}
	n.set(0, v)
	return nil
}

func opConstant(n *nodeCtx) error {
	if err := n.arity(0, 0, 1); err != nil {
		return err
	}
	a, err := n.attrs("value", "value_float", "value_floats", "value_int", "value_ints")
	if err != nil {
		return err
	}
	if len(a.m) != 1 {
		return n.fail(ErrMalformed, "want exactly one value attribute")
	}
	var c *tensor
	switch {
	case a.has("value"):
		at, err := a.get("value", pb.AttributeProto_TENSOR)
		if err != nil {
			return err
		}
		if c, err = decodeTensor(at.GetT(), fmt.Sprintf("node %q value", n.name)); err != nil {
			return err
		}
	case a.has("value_float"):
		f, err := a.float("value_float", 0)
		if err != nil {
			return err
		}
		c = &tensor{dtype: pb.TensorProto_FLOAT, f: []float64{f}}
	case a.has("value_floats"):
		fs, err := a.floats("value_floats")
		if err != nil {
			return err
		}
		c = &tensor{dtype: pb.TensorProto_FLOAT, dims: []int64{int64(len(fs))}, f: fs}
	case a.has("value_int"):
		i, err := a.int("value_int", 0)
		if err != nil {
			return err
		}
		c = &tensor{dtype: pb.TensorProto_INT64, i: []int64{i}, f: []float64{float64(i)}}
	default:
		is, err := a.ints("value_ints")
		if err != nil {
			return err
		}
		c = &tensor{dtype: pb.TensorProto_INT64, dims: []int64{int64(len(is))}, i: is, f: make([]float64, len(is))}
		for k, x := range is {
			c.f[k] = float64(x)
		}
	}
	n.set(0, &value{kind: kConst, c: c})
	return nil
}

// reshaped returns v with shape [N] (flat) or [N, width].
func reshaped(v *value, flat bool) *value {
	c := *v
	c.flat, c.extra = flat, false
	return &c
}

func opReshape(n *nodeCtx) error {
	if err := n.arity(1, 2, 1); err != nil {
		return err
	}
	a, err := n.attrs("shape", "allowzero")
	if err != nil {
		return err
	}
	v, err := n.data(0)
	if err != nil {
		return err
	}
	var shape []int64
	if len(n.p.Input) == 2 {
		t, err := n.konst(1)
		if err != nil {
			return err
		}
		if t.i == nil {
			return n.fail(ErrMalformed, "the shape is not an integer tensor")
		}
		shape = t.i
	} else if shape, err = a.ints("shape"); err != nil {
		return err
	}
	if v.kind == kLabel {
		n.set(0, v)
		return nil
	}
	w := int64(v.width())
	switch {
	case v.extra && len(shape) == 3 && (shape[0] == -1 || shape[0] == 0) && shape[1] == 1 && (shape[2] == w || shape[2] == -1):
		n.set(0, v)
	case len(shape) == 2 && (shape[0] == -1 || shape[0] == 0) && (shape[1] == w || (shape[1] == -1 && shape[0] != -1)):
		n.set(0, reshaped(v, false))
	case len(shape) == 1 && w == 1 && (shape[0] == -1 || shape[0] == 0):
		n.set(0, reshaped(v, true))
	default:
		return n.fail(ErrUnsupported, "a reshape of %d columns to %v would mix rows and columns", w, shape)
	}
	return nil
}

func opFlatten(n *nodeCtx) error {
	a, v, err := n.unary("axis")
	if err != nil {
		return err
	}
	axis, err := a.int("axis", 1)
	if err != nil {
		return err
	}
	if axis != 1 {
		return n.fail(ErrUnsupported, "axis %d (linnet keeps rows apart: axis 1)", axis)
	}
	n.set(0, reshaped(v, false))
	return nil
}

// opSqueeze handles Squeeze and Unsqueeze of the column axis of a single
// column (axes as an attribute before opset 13, an input after).
func opSqueeze(n *nodeCtx) error {
	if err := n.arity(1, 2, 1); err != nil {
		return err
	}
	a, err := n.attrs("axes")
	if err != nil {
		return err
	}
	v, err := n.data(0)
	if err != nil {
		return err
	}
	axes, err := n.axes(a)
	if err != nil {
		return err
	}
	squeeze := n.op == "Squeeze"
	ok := len(axes) == 1 && (axes[0] == 1 || axes[0] == -1) && v.width() == 1 && v.flat != squeeze
	if squeeze && axes == nil && v.width() == 1 && !v.flat {
		ok = true
	}
	if v.kind == kLabel {
		ok = true
	}
	if !ok {
		return n.fail(ErrUnsupported, "axes %v of %s of width %d", axes, v.kind, v.width())
	}
	n.set(0, reshaped(v, squeeze))
	return nil
}

// opConcat joins columns (Concat on axis 1, FeatureVectorizer).
func opConcat(n *nodeCtx) error {
	if err := n.arity(1, maxNodeIO, 1); err != nil {
		return err
	}
	var dims []int64
	if n.op == "FeatureVectorizer" {
		a, err := n.attrs("inputdimensions")
		if err != nil {
			return err
		}
		if dims, err = a.ints("inputdimensions"); err != nil {
			return err
		}
		if len(dims) != len(n.p.Input) {
			return n.fail(ErrMalformed, "%d inputdimensions for %d inputs", len(dims), len(n.p.Input))
		}
	}
	var axis int64 = 1
	if n.op == "Concat" {
		a, err := n.attrs("axis")
		if err != nil {
			return err
		}
		if axis, err = a.int("axis", 1); err != nil {
			return err
		}
	}
	ins := make([]*value, len(n.p.Input))
	kinds := map[kind]bool{}
	extra := false
	for i := range ins {
		v, err := n.data(i)
		if err != nil {
			return err
		}
		if v.kind != kCols && v.kind != kLin && v.kind != kStrings && v.kind != kCodes {
			return n.fail(ErrUnsupported, "input %d is %s", i, v.kind)
		}
		if v.flat && n.op == "Concat" {
			return n.fail(ErrUnsupported, "input %d is one-dimensional", i)
		}
		if dims != nil && dims[i] != int64(v.width()) {
			return n.fail(ErrUnsupported, "input %d has %d columns, inputdimensions says %d", i, v.width(), dims[i])
		}
		if i > 0 && v.extra != extra {
			return n.fail(ErrUnsupported, "inputs of different ranks")
		}
		extra = v.extra
		kinds[v.kind] = true
		ins[i] = v
	}
	// [N, k] joins on axis 1 (or -1); OneHotEncoder's [N, 1, k] on 2 (or -1).
	if (!extra && axis != 1 && axis != -1) || (extra && axis != 2 && axis != -1) {
		return n.fail(ErrUnsupported, "axis %d would mix rows and columns", axis)
	}
	if (kinds[kStrings] || kinds[kCodes]) && len(kinds) > 1 {
		return n.fail(ErrUnsupported, "a join of categories and numbers")
	}
	out := &value{kind: kCols, extra: extra}
	switch {
	case kinds[kStrings], kinds[kCodes]:
		out.kind = ins[0].kind
	case kinds[kLin]:
		out.kind = kLin
	default:
		total := 0
		for _, v := range ins {
			total += len(v.cols)
		}
		out.cols = make([]col, 0, total)
	}
	for _, v := range ins {
		switch out.kind {
		case kStrings, kCodes:
			out.strs = append(out.strs, v.strs...)
		case kCols:
			out.cols = append(out.cols, v.cols...)
		default:
			out.forms = append(out.forms, n.g.lin(v)...)
		}
	}
	n.set(0, out)
	return nil
}

// perColumn broadcasts constant c to w values, one per column.
func perColumn(n *nodeCtx, c *tensor, w int) ([]float64, error) {
	l := c.len()
	rowShape := len(c.dims) <= 1 || (len(c.dims) == 2 && c.dims[0] == 1)
	switch {
	case l == 1:
		out := make([]float64, w)
		for i := range out {
			out[i] = c.f[0]
		}
		return out, nil
	case l == w && rowShape:
		return c.f, nil
	}
	return nil, n.fail(ErrUnsupported, "a constant of shape %v does not broadcast over %d columns one value per column", c.dims, w)
}

// affine applies y = a*x + b (or x/d + b with div) to a data value.
func affine(n *nodeCtx, v *value, mul, div, add []float64) (*value, error) {
	out := &value{kind: v.kind, flat: v.flat, extra: v.extra}
	switch v.kind {
	case kCols:
		out.cols = slices.Clone(v.cols)
		for j := range out.cols {
			c := &out.cols[j]
			if mul != nil {
				c.scale(mul[j])
			}
			if div != nil {
				c.divide(div[j])
			}
			if add != nil {
				c.shift(add[j])
			}
		}
	case kLin:
		out.forms = make([]form, len(v.forms))
		for j, f := range v.forms {
			a := 1.0
			if mul != nil {
				a = mul[j]
			}
			if div != nil {
				a /= div[j]
			}
			out.forms[j] = f.scaled(a)
			if add != nil {
				out.forms[j].b += add[j]
			}
		}
	default:
		return nil, n.fail(ErrUnsupported, "arithmetic on %s is not linear", v.kind)
	}
	return out, nil
}

// opArith handles Add, Sub, Mul and Div of the features by a constant.
func opArith(n *nodeCtx) error {
	if err := n.arity(2, 2, 1); err != nil {
		return err
	}
	if _, err := n.attrs(); err != nil { // broadcast/axis (before opset 7) are not supported
		return err
	}
	a, b := n.in(0), n.in(1)
	if a == nil || b == nil {
		return n.fail(ErrMalformed, "an input is missing")
	}
	if b.kind == kUnit && (n.op == "Div" || n.op == "Mul") {
		if a.kind == kSig && len(a.forms) == 2 && a.forms[0].negates(a.forms[1]) {
			a = &value{kind: kProb, z: &a.forms[1], classes: a.classes}
		}
		n.set(0, a) // dividing probabilities by their sum, 1
		return nil
	}
	if a.kind == kConst && b.kind == kConst {
		return n.fail(ErrUnsupported, "both inputs are constants (fold them before export)")
	}
	if a.kind != kConst && b.kind != kConst {
		if n.op == "Add" || n.op == "Sub" {
			return addData(n, a, b)
		}
		return n.fail(ErrUnsupported, "%s of two feature-dependent values is not linear", n.op)
	}
	dataFirst := a.kind != kConst
	v, ci := a, 1
	if !dataFirst {
		v, ci = b, 0
	}
	c, err := n.konst(ci)
	if err != nil {
		return err
	}
	k, err := perColumn(n, c, v.width())
	if err != nil {
		return err
	}
	var out *value
	switch n.op {
	case "Add":
		out, err = affine(n, v, nil, nil, k)
	case "Mul":
		out, err = affine(n, v, k, nil, nil)
	case "Sub":
		if dataFirst {
			neg := make([]float64, len(k))
			for i, x := range k {
				neg[i] = -x
			}
			out, err = affine(n, v, nil, nil, neg)
		} else {
			minus := make([]float64, len(k))
			for i := range minus {
				minus[i] = -1
			}
			out, err = affine(n, v, minus, nil, k)
		}
	case "Div":
		if !dataFirst {
			return n.fail(ErrUnsupported, "dividing a constant by the features is not linear")
		}
		if slices.Contains(k, 0) {
			return n.fail(ErrUnsupported, "division by zero")
		}
		out, err = affine(n, v, nil, k, nil)
	}
	if err != nil {
		return err
	}
	if v.flat && (len(c.dims) == 2) {
		out.flat = false
	}
	n.set(0, out)
	return nil
}

// addData adds or subtracts two feature-dependent values of one width.
func addData(n *nodeCtx, a, b *value) error {
	if (a.kind != kCols && a.kind != kLin) || (b.kind != kCols && b.kind != kLin) {
		return n.fail(ErrUnsupported, "%s of %s and %s", n.op, a.kind, b.kind)
	}
	if a.width() != b.width() || a.flat != b.flat {
		return n.fail(ErrUnsupported, "%s of %d and %d columns", n.op, a.width(), b.width())
	}
	sign := 1.0
	if n.op == "Sub" {
		sign = -1
	}
	fa, fb := n.g.lin(a), n.g.lin(b)
	out := &value{kind: kLin, flat: a.flat, forms: make([]form, len(fa))}
	for j := range fa {
		out.forms[j] = combine([]form{fa[j], fb[j]}, []float64{1, sign}, 0)
	}
	n.set(0, out)
	return nil
}

// weightMatrix checks t is a 2-D (or 1-D, one output) matrix with rows
// rows and returns its values and column count.
func weightMatrix(n *nodeCtx, t *tensor, rows int, name string) ([]float64, int, bool, error) {
	switch len(t.dims) {
	case 1:
		if int(t.dims[0]) == rows {
			return t.f, 1, true, nil
		}
	case 2:
		if int(t.dims[0]) == rows && t.dims[1] > 0 {
			return t.f, int(t.dims[1]), false, nil
		}
	}
	return nil, 0, false, n.fail(ErrUnsupported, "%s has shape %v, want [%d, outputs] for %d input columns", name, t.dims, rows, rows)
}

func opMatMul(n *nodeCtx) error {
	if err := n.arity(2, 2, 1); err != nil {
		return err
	}
	if _, err := n.attrs(); err != nil {
		return err
	}
	if a := n.in(0); a != nil && a.kind == kConst {
		return n.fail(ErrUnsupported, "the weights are on the left (linnet reads X times W)")
	}
	v, err := n.data(0)
	if err != nil {
		return err
	}
	if v.kind != kCols && v.kind != kLin {
		return n.fail(ErrUnsupported, "MatMul of %s is not linear", v.kind)
	}
	if v.flat && v.width() != 1 {
		return n.fail(ErrUnsupported, "one-dimensional input")
	}
	t, err := n.konst(1)
	if err != nil {
		return err
	}
	w, k, flat, err := weightMatrix(n, t, v.width(), "the weight matrix")
	if err != nil {
		return err
	}
	forms, err := n.g.mix(v, w, k, nil)
	if err != nil {
		return n.fail(ErrUnsupported, "%v", err)
	}
	n.set(0, &value{kind: kLin, forms: forms, flat: flat})
	return nil
}

func opGemm(n *nodeCtx) error {
	if err := n.arity(2, 3, 1); err != nil {
		return err
	}
	a, err := n.attrs("alpha", "beta", "transA", "transB", "broadcast")
	if err != nil {
		return err
	}
	alpha, err := a.float("alpha", 1)
	if err != nil {
		return err
	}
	beta, err := a.float("beta", 1)
	if err != nil {
		return err
	}
	transA, err := a.int("transA", 0)
	if err != nil {
		return err
	}
	transB, err := a.int("transB", 0)
	if err != nil {
		return err
	}
	if transA != 0 {
		return n.fail(ErrUnsupported, "transA=%d (the features must be rows)", transA)
	}
	v, err := n.data(0)
	if err != nil {
		return err
	}
	if v.kind != kCols && v.kind != kLin {
		return n.fail(ErrUnsupported, "Gemm of %s is not linear", v.kind)
	}
	t, err := n.konst(1)
	if err != nil {
		return err
	}
	if len(t.dims) != 2 {
		return n.fail(ErrUnsupported, "B has shape %v, want 2 dimensions", t.dims)
	}
	c := v.width()
	rows, k := int(t.dims[0]), int(t.dims[1])
	if transB != 0 {
		rows, k = k, rows
	}
	if rows != c || k == 0 {
		return n.fail(ErrUnsupported, "B has shape %v (transB=%d) for %d input columns", t.dims, transB, c)
	}
	w := make([]float64, rows*k)
	for j := 0; j < rows; j++ {
		for r := 0; r < k; r++ {
			if transB != 0 {
				w[j*k+r] = alpha * t.f[r*rows+j]
			} else {
				w[j*k+r] = alpha * t.f[j*k+r]
			}
		}
	}
	var bias []float64
	if n.in(2) != nil {
		ct, err := n.konst(2)
		if err != nil {
			return err
		}
		if bias, err = perColumn(n, ct, k); err != nil {
			return err
		}
		bias = slices.Clone(bias)
		for i := range bias {
			bias[i] *= beta
		}
	}
	forms, err := n.g.mix(v, w, k, bias)
	if err != nil {
		return n.fail(ErrUnsupported, "%v", err)
	}
	n.set(0, &value{kind: kLin, forms: forms})
	return nil
}

func opSigmoid(n *nodeCtx) error {
	_, v, err := n.unary()
	if err != nil {
		return err
	}
	if v.kind != kCols && v.kind != kLin {
		return n.fail(ErrUnsupported, "Sigmoid of %s", v.kind)
	}
	n.set(0, &value{kind: kSig, forms: n.g.lin(v), flat: v.flat})
	return nil
}

// binaryZ returns the logit of class 1 for two score rows: f1 when the
// rows are each other's negation (skl2onnx's binary layout), else f1 - f0.
func binaryZ(f0, f1 form) *form {
	if f0.negates(f1) {
		return &f1
	}
	z := combine([]form{f0, f1}, []float64{-1, 1}, 0)
	return &z
}

func opSoftmax(n *nodeCtx) error {
	a, v, err := n.unary("axis")
	if err != nil {
		return err
	}
	axis, err := a.int("axis", -1)
	if err != nil {
		return err
	}
	if axis != 1 && axis != -1 {
		return n.fail(ErrUnsupported, "axis %d", axis)
	}
	if v.kind != kLin || len(v.forms) != 2 || v.flat {
		return n.fail(ErrUnsupported, "Softmax of %s of width %d: linnet serves binary classifiers", v.kind, v.width())
	}
	f0, f1 := v.forms[0], v.forms[1]
	z := combine([]form{f0, f1}, []float64{-1, 1}, 0)
	n.set(0, &value{kind: kProb, z: &z, classes: v.classes})
	return nil
}

func opArgMax(n *nodeCtx) error {
	a, v, err := n.unary("axis", "keepdims", "select_last_index")
	if err != nil {
		return err
	}
	axis, err := a.int("axis", 0)
	if err != nil {
		return err
	}
	if axis != 1 && axis != -1 {
		return n.fail(ErrUnsupported, "axis %d", axis)
	}
	var z *form
	switch {
	case v.kind == kProb:
		z = v.z
	case (v.kind == kLin || v.kind == kSig) && len(v.forms) == 2:
		z = binaryZ(v.forms[0], v.forms[1])
	default:
		return n.fail(ErrUnsupported, "ArgMax over %s of width %d: linnet serves binary classifiers", v.kind, v.width())
	}
	n.set(0, &value{kind: kLabel, z: z, classes: v.classes})
	return nil
}

func opArrayFeatureExtractor(n *nodeCtx) error {
	if err := n.arity(2, 2, 1); err != nil {
		return err
	}
	if _, err := n.attrs(); err != nil {
		return err
	}
	x, idx := n.in(0), n.in(1)
	if x == nil || idx == nil {
		return n.fail(ErrMalformed, "an input is missing")
	}
	if idx.kind == kLabel { // class labels looked up by predicted index
		if x.kind != kConst {
			return n.fail(ErrUnsupported, "labels that depend on the features")
		}
		n.set(0, idx)
		return nil
	}
	t, err := n.konst(1)
	if err != nil {
		return err
	}
	if t.i == nil || len(t.i) == 0 {
		return n.fail(ErrUnsupported, "indices of shape %v", t.dims)
	}
	j := t.i[0]
	switch {
	case x.kind == kProb && len(t.i) == 1 && (j == 0 || j == 1):
		z := *x.z
		if j == 0 {
			z = z.scaled(-1)
		}
		n.set(0, &value{kind: kSig, forms: []form{z}})
	case x.kind == kLin || x.kind == kCols || x.kind == kSig || x.kind == kStrings || x.kind == kCodes:
		return selectColumns(n)
	default:
		return n.fail(ErrUnsupported, "column %d of %s of width %d", j, x.kind, x.width())
	}
	return nil
}

func opScaler(n *nodeCtx) error {
	a, v, err := n.unary("offset", "scale")
	if err != nil {
		return err
	}
	w := v.width()
	get := func(name string, def float64) ([]float64, error) {
		f, err := a.floats(name)
		if err != nil {
			return nil, err
		}
		switch len(f) {
		case 0:
			f = []float64{def}
			fallthrough
		case 1:
			out := make([]float64, w)
			for i := range out {
				out[i] = f[0]
			}
			return out, nil
		case w:
			return f, nil
		}
		return nil, n.fail(ErrMalformed, "%d %s values for %d columns", len(f), name, w)
	}
	offset, err := get("offset", 0)
	if err != nil {
		return err
	}
	scale, err := get("scale", 1)
	if err != nil {
		return err
	}
	neg := make([]float64, w)
	for i, o := range offset {
		neg[i] = -o
	}
	shifted, err := affine(n, v, nil, nil, neg)
	if err != nil {
		return err
	}
	out, err := affine(n, shifted, scale, nil, nil)
	if err != nil {
		return err
	}
	n.set(0, out)
	return nil
}

func opLinearRegressor(n *nodeCtx) error {
	a, v, err := n.unary("coefficients", "intercepts", "targets", "post_transform")
	if err != nil {
		return err
	}
	if v.kind != kCols && v.kind != kLin {
		return n.fail(ErrUnsupported, "input is %s", v.kind)
	}
	if pt, err := a.str("post_transform", "NONE"); err != nil {
		return err
	} else if pt != "NONE" {
		return n.fail(ErrUnsupported, "post_transform %s", pt)
	}
	targets, err := a.int("targets", 1)
	if err != nil {
		return err
	}
	if targets != 1 {
		return n.fail(ErrUnsupported, "targets=%d: linnet serves one output", targets)
	}
	coef, err := a.floats("coefficients")
	if err != nil {
		return err
	}
	if len(coef) != v.width() {
		return n.fail(ErrMalformed, "%d coefficients for %d input columns", len(coef), v.width())
	}
	icpt, err := a.floats("intercepts")
	if err != nil {
		return err
	}
	if len(icpt) > 1 {
		return n.fail(ErrMalformed, "%d intercepts for one target", len(icpt))
	}
	forms, err := n.g.mix(v, coef, 1, icpt)
	if err != nil {
		return n.fail(ErrUnsupported, "%v", err)
	}
	n.set(0, &value{kind: kLin, forms: forms})
	return nil
}

func opLinearClassifier(n *nodeCtx) error {
	if err := n.arity(1, 1, 2); err != nil {
		return err
	}
	a, err := n.attrs("coefficients", "intercepts", "classlabels_ints", "classlabels_strings", "multi_class", "post_transform")
	if err != nil {
		return err
	}
	v, err := n.data(0)
	if err != nil {
		return err
	}
	if v.kind != kCols && v.kind != kLin {
		return n.fail(ErrUnsupported, "input is %s", v.kind)
	}
	classes, err := a.classLabels("classlabels_ints", "classlabels_strings")
	if err != nil {
		return err
	}
	if len(classes) != 2 {
		return n.fail(ErrUnsupported, "%d classes: linnet serves binary classifiers", len(classes))
	}
	if _, err := a.int("multi_class", 0); err != nil {
		return err
	}
	pt, err := a.str("post_transform", "NONE")
	if err != nil {
		return err
	}
	coef, err := a.floats("coefficients")
	if err != nil {
		return err
	}
	c := v.width()
	if c == 0 || len(coef)%c != 0 || len(coef)/c < 1 || len(coef)/c > 2 {
		return n.fail(ErrMalformed, "%d coefficients for %d input columns and 2 classes", len(coef), c)
	}
	rows := len(coef) / c
	icpt, err := a.floats("intercepts")
	if err != nil {
		return err
	}
	if len(icpt) == 0 {
		icpt = make([]float64, rows)
	}
	if len(icpt) != rows {
		return n.fail(ErrMalformed, "%d intercepts for %d coefficient rows", len(icpt), rows)
	}
	w := make([]float64, c*rows) // input-major, as mix wants
	for r := 0; r < rows; r++ {
		for j := 0; j < c; j++ {
			w[j*rows+r] = coef[r*c+j]
		}
	}
	forms, err := n.g.mix(v, w, rows, icpt)
	if err != nil {
		return n.fail(ErrUnsupported, "%v", err)
	}
	if rows == 1 {
		forms = []form{forms[0].scaled(-1), forms[0]}
	}
	f0, f1 := forms[0], forms[1]
	var scores *value
	switch pt {
	case "LOGISTIC":
		if !f0.negates(f1) {
			return n.fail(ErrUnsupported, "LOGISTIC over two independent coefficient rows is not a logistic model")
		}
		scores = &value{kind: kProb, z: &forms[1], classes: classes}
	case "SOFTMAX", "SOFTMAX_ZERO":
		if rows == 1 {
			return n.fail(ErrUnsupported, "%s over one coefficient row", pt)
		}
		z := combine([]form{f0, f1}, []float64{-1, 1}, 0)
		scores = &value{kind: kProb, z: &z, classes: classes}
	case "NONE":
		scores = &value{kind: kLin, forms: forms, z: binaryZ(f0, f1), classes: classes}
	default:
		return n.fail(ErrUnsupported, "post_transform %s", pt)
	}
	n.set(0, &value{kind: kLabel, z: scores.z, classes: classes, flat: true})
	n.set(1, scores)
	return nil
}

func opNormalizer(n *nodeCtx) error {
	a, v, err := n.unary("norm")
	if err != nil {
		return err
	}
	norm, err := a.str("norm", "MAX")
	if err != nil {
		return err
	}
	if norm != "L1" {
		return n.fail(ErrUnsupported, "norm %s: linnet imports the L1 normalization of binary probabilities", norm)
	}
	switch {
	case v.kind == kProb:
		n.set(0, v) // the two probabilities already sum to 1
	case v.kind == kSig && len(v.forms) == 2 && v.forms[0].negates(v.forms[1]):
		n.set(0, &value{kind: kProb, z: &v.forms[1], classes: v.classes})
	default:
		return n.fail(ErrUnsupported, "L1 normalization of %s of width %d is not a binary probability", v.kind, v.width())
	}
	return nil
}

func opZipMap(n *nodeCtx) error {
	a, v, err := n.unary("classlabels_int64s", "classlabels_strings")
	if err != nil {
		return err
	}
	classes, err := a.classLabels("classlabels_int64s", "classlabels_strings")
	if err != nil {
		return err
	}
	if v.kind != kProb || len(classes) != 2 {
		return n.fail(ErrUnsupported, "ZipMap of %s with %d classes: linnet serves binary classifiers", v.kind, len(classes))
	}
	n.set(0, &value{kind: kMap, z: v.z, classes: classes})
	return nil
}

// opAbs passes probabilities through (they are positive): skl2onnx's L1
// normalization in double precision is Abs, ReduceSum, Div.
func opAbs(n *nodeCtx) error {
	_, v, err := n.unary()
	if err != nil {
		return err
	}
	if v.kind != kSig && v.kind != kProb && v.kind != kUnit {
		return n.fail(ErrUnsupported, "Abs of %s is not linear", v.kind)
	}
	n.set(0, v)
	return nil
}

// opReduceSum sums a binary probability pair over its columns: 1.
func opReduceSum(n *nodeCtx) error {
	if err := n.arity(1, 2, 1); err != nil {
		return err
	}
	a, err := n.attrs("axes", "keepdims", "noop_with_empty_axes")
	if err != nil {
		return err
	}
	axes, err := n.axes(a)
	if err != nil {
		return err
	}
	keep, err := a.int("keepdims", 1)
	if err != nil {
		return err
	}
	v, err := n.data(0)
	if err != nil {
		return err
	}
	pair := v.kind == kProb || (v.kind == kSig && len(v.forms) == 2 && v.forms[0].negates(v.forms[1]))
	if !pair || keep != 1 || len(axes) != 1 || (axes[0] != 1 && axes[0] != -1) {
		return n.fail(ErrUnsupported, "ReduceSum over axes %v of %s of width %d: linnet sums a binary probability pair", axes, v.kind, v.width())
	}
	n.set(0, &value{kind: kUnit})
	return nil
}
