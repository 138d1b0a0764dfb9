package onnx

import (
	"fmt"
	"math"
	"strconv"

	"github.com/linnet-edge/linnet/model"
	pb "github.com/linnet-edge/linnet/model/onnx/onnxpb"
)

const (
	maxNodes      = 1 << 14 // nodes in the graph
	maxAttributes = 64      // attributes on one node
	maxNodeIO     = 1 << 22 // inputs or outputs of one node (a Concat of every column)
	// maxWork bounds the multiply-adds of composing weight matrices, so a
	// chain of MatMuls cannot make import quadratic in the file size.
	maxWork = 1 << 28
)

const (
	domainONNX = "ai.onnx"
	domainML   = "ai.onnx.ml"
)

// graph follows the values of one ONNX graph symbolically.
type graph struct {
	vals  map[string]*value
	cols  []col    // columns registered by the weight matrices that met them
	names []string // input column names
	str   []bool   // input columns of strings (categories)
	feats []feature
	fill  map[int]float64  // input column -> the raw value an Imputer puts for a missing one
	cats  map[int][]string // string input column -> its one-hot categories
	work  int64
	opset map[string]int64 // domain ("" for ai.onnx) -> version
	ops   []string         // op types in evaluation order, for the report
}

// register adds cs to the registry and returns the index of the first.
func (g *graph) register(cs []col) int {
	off := len(g.cols)
	g.cols = append(g.cols, cs...)
	return off
}

// lin returns v as affine forms: kLin as is, kCols as one form per column.
func (g *graph) lin(v *value) []form {
	if v.kind == kLin {
		return v.forms
	}
	off := g.register(v.cols)
	fs := make([]form, len(v.cols))
	for j := range fs {
		fs[j] = form{off: off + j, w: []float64{1}}
	}
	return fs
}

// mix applies the weights w (width(v) rows by k columns, row-major) and
// bias (k values, or none for 0) to the data value v.
func (g *graph) mix(v *value, w []float64, k int, bias []float64) ([]form, error) {
	c := v.width()
	if v.extra {
		return nil, fmt.Errorf("input of shape [N, 1, %d]: reshape it to [N, %d] first", c, c)
	}
	if len(w) != c*k {
		return nil, fmt.Errorf("weights of %d values for %d inputs and %d outputs", len(w), c, k)
	}
	out := make([]form, k)
	if v.kind == kCols {
		off := g.register(v.cols)
		g.work += int64(c) * int64(k)
		if g.work > maxWork {
			return nil, tooLarge("weight matrices too large to compose")
		}
		for r := range out {
			out[r] = form{off: off, w: make([]float64, c)}
			for j := 0; j < c; j++ {
				out[r].w[j] = w[j*k+r]
			}
			if r < len(bias) {
				out[r].b = bias[r]
			}
		}
		return out, nil
	}
	in := v.forms
	span := 0
	for _, f := range in {
		span += len(f.w) + 1
	}
	g.work += int64(span) * int64(k)
	if g.work > maxWork {
		return nil, tooLarge("weight matrices too large to compose")
	}
	a := make([]float64, c)
	for r := range out {
		for j := range a {
			a[j] = w[j*k+r]
		}
		var b float64
		if r < len(bias) {
			b = bias[r]
		}
		out[r] = combine(in, a, b)
	}
	return out, nil
}

// feature is one model feature: a numeric input column, or one category
// of a one-hot encoded string column. A col's base indexes g.feats.
type feature struct {
	column int
	cat    int // the category's index among the column's categories
	onehot bool
}

// Info describes what Import found.
type Info struct {
	Producer string   // the tool that wrote the file, with its version
	Output   string   // the graph output taken as the prediction
	Classes  []string // a classifier's labels: the model predicts P(Classes[1])
	Ops      []string // the ops evaluated, in order
}

// Options are the choices Import leaves to the caller.
type Options struct {
	// Features names the graph's input columns in order (required when an
	// input's width is not fixed): the model's features, or its
	// Preprocessing columns when it one-hot encodes or imputes. nil takes
	// the names from the graph: an input of one column is named after it,
	// a wider one gives name_0, name_1...
	Features []string
	// Target names what the model predicts; "" takes the name Export
	// recorded, else the prediction output's name.
	Target string
	// Version is the model's version; 0 leaves it 0 for the caller to set.
	Version int64
}

// Import converts an ONNX model file to a linnet model. Errors wrap
// ErrMalformed, ErrUnsupported or ErrTooLarge; a problem with a node is a
// *NodeError naming it.
func Import(file []byte, opt Options) (*model.Model, *Info, error) {
	mp, err := decodeModel(file)
	if err != nil {
		return nil, nil, err
	}
	gp := mp.GetGraph()
	if gp == nil {
		return nil, nil, malformed("the model has no graph")
	}
	g := &graph{opset: map[string]int64{}}
	g.vals = make(map[string]*value, len(gp.GetInitializer())+len(gp.GetInput())+2*len(gp.GetNode()))
	info := &Info{Producer: mp.GetProducerName()}
	if v := mp.GetProducerVersion(); v != "" {
		info.Producer += " " + v
	}
	for _, o := range mp.GetOpsetImport() {
		d := o.GetDomain()
		if d == domainONNX {
			d = ""
		}
		g.opset[d] = o.GetVersion()
	}
	if _, ok := g.opset[""]; !ok {
		g.opset[""] = 1 // IR version 2 files had no opset_import
	}
	order, err := g.define(gp)
	if err != nil {
		return nil, nil, err
	}
	if err := g.inputs(gp, opt.Features); err != nil {
		return nil, nil, err
	}
	for _, i := range order {
		if err := g.eval(gp.Node[i], i); err != nil {
			return nil, nil, err
		}
	}
	z, logistic, out, classes, err := g.prediction(gp)
	if err != nil {
		return nil, nil, err
	}
	m, err := g.model(z, logistic)
	if err != nil {
		return nil, nil, err
	}
	m.Target = out
	for _, p := range mp.GetMetadataProps() {
		if p.GetKey() == metaTarget && p.GetValue() != "" {
			m.Target = p.GetValue()
		}
	}
	if opt.Target != "" {
		m.Target = opt.Target
	}
	m.Version = opt.Version
	if _, err := m.MarshalBinary(); err != nil { // names: empty, overlong, not UTF-8
		return nil, nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	info.Output, info.Classes, info.Ops = out, classes, g.ops
	return m, info, nil
}

// nodeName is how errors name node i.
func nodeName(n *pb.NodeProto, i int) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	return "#" + strconv.Itoa(i)
}

// define checks that every name is defined once and every node input is
// defined, and returns the nodes the outputs need in topological order.
func (g *graph) define(gp *pb.GraphProto) ([]int, error) {
	nodes := gp.GetNode()
	if len(nodes) > maxNodes {
		return nil, tooLarge("%d nodes, limit %d", len(nodes), maxNodes)
	}
	producer := map[string]int{} // value name -> node index, -1 for inputs and initializers
	for _, t := range gp.GetInitializer() {
		name := t.GetName()
		if name == "" {
			return nil, malformed("an initializer has no name")
		}
		if _, dup := producer[name]; dup {
			return nil, malformed("initializer %q is defined twice", name)
		}
		c, err := decodeTensor(t, fmt.Sprintf("initializer %q", name))
		if err != nil {
			return nil, err
		}
		producer[name] = -1
		g.vals[name] = &value{kind: kConst, c: c}
	}
	if len(gp.GetSparseInitializer()) > 0 {
		return nil, unsupported("sparse initializers")
	}
	for _, in := range gp.GetInput() {
		name := in.GetName()
		if name == "" {
			return nil, malformed("a graph input has no name")
		}
		if _, init := g.vals[name]; init {
			continue // before IR version 4, initializers were listed as inputs too
		}
		if _, dup := producer[name]; dup {
			return nil, malformed("graph input %q is defined twice", name)
		}
		producer[name] = -1
	}
	for i, n := range nodes {
		if len(n.GetInput()) > maxNodeIO || len(n.GetOutput()) > maxNodeIO {
			return nil, &NodeError{nodeName(n, i), n.GetOpType(), ErrTooLarge, fmt.Sprintf("%d inputs and %d outputs", len(n.GetInput()), len(n.GetOutput()))}
		}
		for _, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			if _, dup := producer[o]; dup {
				return nil, &NodeError{nodeName(n, i), n.GetOpType(), ErrMalformed, fmt.Sprintf("output %q is already defined", o)}
			}
			producer[o] = i
		}
	}
	for i, n := range nodes {
		for _, in := range n.GetInput() {
			if _, ok := producer[in]; !ok && in != "" {
				return nil, &NodeError{nodeName(n, i), n.GetOpType(), ErrMalformed, fmt.Sprintf("reads %q, which no node, graph input or initializer defines (a missing initializer?)", in)}
			}
		}
	}
	if len(gp.GetOutput()) == 0 {
		return nil, malformed("the graph has no outputs")
	}
	// Depth-first from the outputs, iteratively: state 1 on the stack, 2 done.
	state := make([]uint8, len(nodes))
	var order []int
	type frame struct{ node, next int }
	for _, o := range gp.GetOutput() {
		p, ok := producer[o.GetName()]
		if !ok {
			return nil, malformed("graph output %q is never computed", o.GetName())
		}
		if p < 0 || state[p] == 2 {
			continue
		}
		stack := []frame{{p, 0}}
		state[p] = 1
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			ins := nodes[f.node].GetInput()
			if f.next == len(ins) {
				state[f.node] = 2
				order = append(order, f.node)
				stack = stack[:len(stack)-1]
				continue
			}
			in := ins[f.next]
			f.next++
			q, ok := producer[in]
			if !ok || q < 0 {
				continue
			}
			switch state[q] {
			case 1:
				n := nodes[q]
				return nil, &NodeError{nodeName(n, q), n.GetOpType(), ErrMalformed, fmt.Sprintf("is part of a cycle: its output %q feeds back into it", in)}
			case 0:
				state[q] = 1
				stack = append(stack, frame{q, 0})
			}
		}
	}
	return order, nil
}

// inputs turns the graph inputs into feature columns and names them.
func (g *graph) inputs(gp *pb.GraphProto, features []string) error {
	type input struct {
		name  string
		width int
		flat  bool
		str   bool
	}
	total := 0
	graphInputs := make([]*pb.ValueInfoProto, 0, len(gp.GetInput()))
	for _, in := range gp.GetInput() {
		if _, init := g.vals[in.GetName()]; !init {
			graphInputs = append(graphInputs, in)
		}
	}
	ins := make([]input, 0, len(graphInputs))
	for _, in := range graphInputs {
		name := in.GetName()
		tt := in.GetType().GetTensorType()
		if tt == nil {
			return unsupported("graph input %q is not a tensor", name)
		}
		it := input{name: name}
		switch pb.TensorProto_DataType(tt.GetElemType()) {
		case pb.TensorProto_FLOAT, pb.TensorProto_DOUBLE, pb.TensorProto_INT64, pb.TensorProto_INT32:
		case pb.TensorProto_STRING:
			it.str = true
		default:
			return unsupported("graph input %q has element type %v (want FLOAT, DOUBLE, INT64 or INT32)", name, pb.TensorProto_DataType(tt.GetElemType()))
		}
		dims := tt.GetShape().GetDim()
		switch {
		case tt.GetShape() != nil && len(dims) == 1:
			it.width, it.flat = 1, true
		case len(dims) == 2 && dims[1].GetDimValue() > 0:
			if dims[1].GetDimValue() > model.MaxFeatures {
				return tooLarge("graph input %q has %d columns, limit %d", name, dims[1].GetDimValue(), model.MaxFeatures)
			}
			it.width = int(dims[1].GetDimValue())
		case (len(dims) == 2 || tt.GetShape() == nil) && len(graphInputs) == 1 && features != nil:
			it.width = len(features)
		case len(dims) == 2:
			return unsupported("graph input %q has no fixed width (dimension %q): name its columns with --features", name, dims[1].GetDimParam())
		default:
			return unsupported("graph input %q has %d dimensions (want [N, columns])", name, len(dims))
		}
		total += it.width
		if total > model.MaxFeatures {
			return tooLarge("more than %d input columns", model.MaxFeatures)
		}
		ins = append(ins, it)
	}
	if len(ins) == 0 {
		return unsupported("the graph has no inputs")
	}
	if features != nil && len(features) != total {
		return fmt.Errorf("%d feature names for the graph's %d input columns", len(features), total)
	}
	// One allocation each for every input's value, columns and names:
	// a model with one input per column has many inputs.
	seen := make(map[string]bool, total)
	vals := make([]value, len(ins))
	cols := make([]col, total)
	g.names = make([]string, 0, total)
	g.str = make([]bool, 0, total)
	g.feats = make([]feature, 0, total)
	for i, it := range ins {
		v := &vals[i]
		*v = value{kind: kCols, flat: it.flat, cols: cols[:it.width:it.width]}
		if it.str {
			v.kind, v.cols, v.strs = kStrings, nil, make([]int, it.width)
		}
		cols = cols[it.width:]
		for j := 0; j < it.width; j++ {
			base := len(g.names)
			name := it.name
			switch {
			case features != nil:
				name = features[base]
			case it.width > 1:
				name += "_" + strconv.Itoa(j)
			}
			if seen[name] {
				return fmt.Errorf("feature %q appears twice among the graph's inputs (rename them with --features)", name)
			}
			seen[name] = true
			g.names = append(g.names, name)
			g.str = append(g.str, it.str)
			if it.str {
				v.strs[j] = base
				continue
			}
			v.cols[j] = col{base: len(g.feats), s: 1}
			g.feats = append(g.feats, feature{column: base})
		}
		g.vals[it.name] = v
	}
	return nil
}

// prediction picks the graph output that is the model's prediction and
// returns its affine form.
func (g *graph) prediction(gp *pb.GraphProto) (z *form, logistic bool, name string, classes []string, err error) {
	for _, o := range gp.GetOutput() {
		v := g.vals[o.GetName()]
		var cand *form
		isLogistic := true
		switch {
		case v.kind == kLabel:
			continue // derived from the same scores as the probabilities
		case v.kind == kProb || v.kind == kMap:
			cand = v.z
		case v.kind == kLin && v.z != nil:
			cand = v.z // a classifier's scores, without post_transform
		case v.kind == kSig && len(v.forms) == 1:
			cand = &v.forms[0]
		case (v.kind == kLin || v.kind == kCols) && v.width() == 1:
			cand, isLogistic = &g.lin(v)[0], false
		case v.kind == kLin || v.kind == kSig || v.kind == kCols:
			return nil, false, "", nil, unsupported("graph output %q has %d columns: linnet serves one prediction", o.GetName(), v.width())
		default:
			return nil, false, "", nil, unsupported("graph output %q is %s, not a prediction", o.GetName(), v.kind)
		}
		if z != nil && (logistic != isLogistic || !sameForm(*z, *cand)) {
			return nil, false, "", nil, unsupported("graph outputs %q and %q are two different models: linnet serves one", name, o.GetName())
		}
		if z == nil {
			z, logistic, name, classes = cand, isLogistic, o.GetName(), v.classes
		}
	}
	if z == nil {
		return nil, false, "", nil, unsupported("no graph output is a prediction (only class labels)")
	}
	return z, logistic, name, classes, nil
}

func sameForm(a, b form) bool {
	return a.negates(b.scaled(-1))
}

// layout orders the features as the model's Preprocessing expands its
// columns (each input column in order; a string column as its one-hot
// categories) and returns each feature's position, the feature names and
// the Preprocessing (nil when there is nothing to do: numeric inputs
// without imputation, whose features are the input columns).
func (g *graph) layout() ([]int, []string, *model.Preprocessing, error) {
	pos := make([]int, len(g.feats))
	if len(g.cats) == 0 && len(g.fill) == 0 {
		for id, f := range g.feats {
			pos[id] = f.column
		}
		for c, name := range g.names {
			if g.str[c] {
				return nil, nil, nil, unsupported("string input column %q is never one-hot encoded", name)
			}
		}
		return pos, g.names, nil, nil
	}
	pre := &model.Preprocessing{Columns: make([]model.Column, len(g.names))}
	offset := make([]int, len(g.names))
	imputeAll, next := true, 0
	for c, name := range g.names {
		col := &pre.Columns[c]
		col.Name = name
		offset[c] = next
		if g.str[c] {
			cats, ok := g.cats[c]
			if !ok {
				return nil, nil, nil, unsupported("string input column %q is never one-hot encoded", name)
			}
			col.Kind, col.Categories = model.OneHot, cats
			next += len(cats)
			continue
		}
		fill, ok := g.fill[c]
		imputeAll = imputeAll && ok
		if !finite(float32(fill)) {
			return nil, nil, nil, unsupported("column %q: imputed value %g does not fit float32", name, fill)
		}
		col.Fill = float32(fill)
		next++
	}
	if !imputeAll {
		pre.Missing = model.MissingError // ONNX would carry the NaN to the prediction
	}
	for id, f := range g.feats {
		pos[id] = offset[f.column] + f.cat
		if g.str[f.column] && !f.onehot {
			pos[id] = -1 // the number of a column that became categorical
		}
	}
	return pos, pre.FeatureNames(), pre, nil
}

// model turns the prediction's form into a linnet model.
func (g *graph) model(z *form, logistic bool) (*model.Model, error) {
	pos, names, pre, err := g.layout()
	if err != nil {
		return nil, err
	}
	n := len(names)
	type acc struct {
		cols int     // registered columns of this feature with a weight
		w    float64 // the weight of the single column
		m, s float64 // its standardization
		raw  float64 // sum of w/s over every column, for features used twice
		off  float64 // sum of w*m/s over every column, likewise
	}
	feats := make([]acc, n)
	bias := z.b
	for j, w := range z.w {
		if w == 0 {
			continue
		}
		c := g.cols[z.off+j]
		if c.base < 0 {
			bias += w * c.k
			continue
		}
		if pos[c.base] < 0 {
			return nil, unsupported("input column %q is used both as a number and as categories", g.names[g.feats[c.base].column])
		}
		a := &feats[pos[c.base]]
		a.cols++
		a.w, a.m, a.s = w, c.m, c.s
		a.raw += w / c.s
		a.off += w * c.m / c.s
	}
	m := &model.Model{
		Features:      names,
		Preprocessing: pre,
		Loss:          model.Squared,
		Scheme:        model.F32,
		Mean:          make([]float32, n),
		Std:           make([]float32, n),
		Weights:       make([]float32, n),
	}
	if logistic {
		m.Loss = model.Logistic
	}
	// A feature with a zero weight keeps the standardization of the first
	// column it had, for the online learner.
	for _, c := range g.cols {
		if c.base >= 0 && pos[c.base] >= 0 && feats[pos[c.base]].cols == 0 && c.s != 0 {
			feats[pos[c.base]] = acc{cols: 1, m: c.m, s: c.s}
		}
	}
	// A feature met once keeps its standardization; one met several times
	// (or never) gets one raw weight and no scaling.
	for i, a := range feats {
		w, mean, std := a.raw, 0.0, 1.0
		if a.cols == 1 {
			w, mean, std = a.w, a.m, a.s
			if std < 0 {
				w, std = -w, -std
			}
		} else {
			bias -= a.off
		}
		m.Weights[i], m.Mean[i], m.Std[i] = float32(w), float32(mean), float32(std)
		if !finite(m.Weights[i]) || !finite(m.Mean[i]) || !(m.Std[i] > 0) || math.IsInf(float64(m.Std[i]), 0) {
			return nil, unsupported("feature %q: weight %g, mean %g, scale %g do not fit a float32 model", names[i], w, mean, std)
		}
	}
	m.Bias = float32(bias)
	if !finite(m.Bias) {
		return nil, unsupported("intercept %g does not fit a float32 model", bias)
	}
	return m, nil
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
