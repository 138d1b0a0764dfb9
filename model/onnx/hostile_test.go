package onnx

import (
	"errors"
	"runtime"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/linnet-edge/linnet/model"
	pb "github.com/linnet-edge/linnet/model/onnx/onnxpb"
)

// exported returns the ModelProto of an exported test model, to mutate.
func exported(t testing.TB, loss model.Loss) *pb.ModelProto {
	t.Helper()
	file, err := Export(testModel(4, loss, 11))
	if err != nil {
		t.Fatal(err)
	}
	mp := &pb.ModelProto{}
	if err := proto.Unmarshal(file, mp); err != nil {
		t.Fatal(err)
	}
	return mp
}

func marshal(t testing.TB, mp *pb.ModelProto) []byte {
	t.Helper()
	b, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func findNode(mp *pb.ModelProto, op string) *pb.NodeProto {
	for _, n := range mp.Graph.Node {
		if n.GetOpType() == op {
			return n
		}
	}
	return nil
}

// importBounded imports file and checks the bytes allocated stay within
// MemoryFactor times the file plus the slack.
func importBounded(t *testing.T, file []byte) error {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := Import(file, Options{})
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > uint64(MemoryFactor*len(file)+memorySlack) {
		t.Errorf("import of a %d-byte file allocated %d bytes", len(file), alloc)
	}
	if len(file) > 1<<19 {
		t.Logf("import of a %d-byte file allocated %d bytes (%.1f times)", len(file), alloc, float64(alloc)/float64(len(file)))
	}
	return err
}

func TestHostileFiles(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(*pb.ModelProto)
		loss   model.Loss
		kind   error
		want   string
	}{
		{"2^40 elements", func(mp *pb.ModelProto) {
			mp.Graph.Initializer[0].Dims = []int64{1 << 40}
		}, model.Squared, ErrMalformed, "claim more than 2^28 elements"},
		{"dims disagree with data", func(mp *pb.ModelProto) {
			mp.Graph.Initializer[0].Dims = []int64{5}
		}, model.Squared, ErrMalformed, `initializer "mean": dims [5] claim 5 elements but the tensor holds 4 values`},
		{"negative dim", func(mp *pb.ModelProto) {
			mp.Graph.Initializer[0].Dims = []int64{-4}
		}, model.Squared, ErrMalformed, "dimension -4"},
		{"cycle", func(mp *pb.ModelProto) {
			sub, div := findNode(mp, "Sub"), findNode(mp, "Div")
			sub.Input[0] = div.Output[0]
		}, model.Squared, ErrMalformed, "cycle"},
		{"missing initializer", func(mp *pb.ModelProto) {
			mp.Graph.Initializer = mp.Graph.Initializer[:1]
		}, model.Squared, ErrMalformed, `node "scale" (Div): reads "std", which no node, graph input or initializer defines`},
		{"string weights", func(mp *pb.ModelProto) {
			in := mp.Graph.Initializer[1]
			in.DataType, in.FloatData, in.StringData = proto.Int32(int32(pb.TensorProto_STRING)), nil, [][]byte{{1}, {2}, {3}, {4}}
		}, model.Squared, ErrMalformed, `node "scale" (Div): input 1 ("std") holds strings`},
		{"int8 weights", func(mp *pb.ModelProto) {
			mp.Graph.Initializer[1].DataType = proto.Int32(int32(pb.TensorProto_INT8))
		}, model.Squared, ErrUnsupported, "data type INT8"},
		{"bool input", func(mp *pb.ModelProto) {
			mp.Graph.Input[0].Type.GetTensorType().ElemType = proto.Int32(int32(pb.TensorProto_BOOL))
		}, model.Squared, ErrUnsupported, "element type BOOL"},
		{"attribute of the wrong type", func(mp *pb.ModelProto) {
			a := findNode(mp, "LinearRegressor").Attribute[0]
			a.Type = pb.AttributeProto_INTS.Enum()
		}, model.Squared, ErrMalformed, `node "linear" (LinearRegressor): attribute "coefficients" is INTS, want FLOATS`},
		{"many attributes", func(mp *pb.ModelProto) {
			n := findNode(mp, "LinearRegressor")
			for i := 0; i < 1000; i++ {
				n.Attribute = append(n.Attribute, &pb.AttributeProto{Name: proto.String("padding-attribute-name")})
			}
		}, model.Squared, ErrTooLarge, `node "linear" (LinearRegressor): 1002 attributes, limit 64`},
		{"unknown attribute", func(mp *pb.ModelProto) {
			n := findNode(mp, "LinearRegressor")
			n.Attribute = append(n.Attribute, strAttr("kernel", "rbf"))
		}, model.Squared, ErrUnsupported, `attribute "kernel" is not supported`},
		{"three classes", func(mp *pb.ModelProto) {
			n := findNode(mp, "LinearClassifier")
			for _, a := range n.Attribute {
				if a.GetName() == "classlabels_ints" {
					a.Ints = []int64{0, 1, 2}
				}
			}
		}, model.Logistic, ErrUnsupported, `node "linear" (LinearClassifier): 3 classes: linnet serves binary classifiers`},
		{"probit", func(mp *pb.ModelProto) {
			n := findNode(mp, "LinearClassifier")
			for _, a := range n.Attribute {
				if a.GetName() == "post_transform" {
					a.S = []byte("PROBIT")
				}
			}
		}, model.Logistic, ErrUnsupported, "post_transform PROBIT"},
		{"relu", func(mp *pb.ModelProto) {
			findNode(mp, "Div").OpType = proto.String("Relu")
		}, model.Squared, ErrUnsupported, `node "scale" (Relu): Relu is not linear`},
		{"unknown domain", func(mp *pb.ModelProto) {
			findNode(mp, "LinearRegressor").Domain = proto.String("com.microsoft")
		}, model.Squared, ErrUnsupported, `domain "com.microsoft"`},
		{"dynamic width", func(mp *pb.ModelProto) {
			d := mp.Graph.Input[0].Type.GetTensorType().Shape.Dim[1]
			d.Value = &pb.TensorShapeProto_Dimension_DimParam{DimParam: "C"}
		}, model.Squared, ErrUnsupported, `graph input "f0_x" has no fixed width (dimension "C"): name its columns with --features`},
		{"external data", func(mp *pb.ModelProto) {
			mp.Graph.Initializer[0].DataLocation = pb.TensorProto_EXTERNAL.Enum()
		}, model.Squared, ErrUnsupported, "external file"},
		{"no graph", func(mp *pb.ModelProto) { mp.Graph = nil }, model.Squared, ErrMalformed, "no graph"},
		{"output defined twice", func(mp *pb.ModelProto) {
			findNode(mp, "Div").Output[0] = "centered"
		}, model.Squared, ErrMalformed, `output "centered" is already defined`},
		{"two regressions", func(mp *pb.ModelProto) {
			n := proto.Clone(findNode(mp, "LinearRegressor")).(*pb.NodeProto)
			n.Name, n.Output[0] = proto.String("other"), "other"
			n.Attribute[1].Floats = []float32{99}
			mp.Graph.Node = append(mp.Graph.Node, n)
			mp.Graph.Output = append(mp.Graph.Output, tensorInfo("other", pb.TensorProto_FLOAT, 1))
		}, model.Squared, ErrUnsupported, `graph outputs "variable" and "other" are two different models`},
		{"imputer replacing zeros", func(mp *pb.ModelProto) {
			for _, a := range findNode(mp, "Imputer").Attribute {
				if a.GetName() == "replaced_value_float" {
					a.F = proto.Float32(0)
				}
			}
		}, "pre", ErrUnsupported, `node "impute0" (Imputer): replaced_value_float is not NaN`},
		{"text never encoded", func(mp *pb.ModelProto) {
			findNode(mp, "OneHotEncoder").Input[0] = "temp"
		}, "pre", ErrUnsupported, `node "onehot1" (OneHotEncoder): string categories of features`},
		{"one-hot output into a weight matrix", func(mp *pb.ModelProto) {
			r := findNode(mp, "Reshape")
			r.OpType, r.Input = proto.String("Identity"), r.Input[:1]
		}, "pre", ErrUnsupported, `node "concat" (Concat): inputs of different ranks`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mp *pb.ModelProto
			if c.loss == "pre" {
				file, err := Export(preprocessedModel(model.MissingImpute))
				if err != nil {
					t.Fatal(err)
				}
				mp = &pb.ModelProto{}
				if err := proto.Unmarshal(file, mp); err != nil {
					t.Fatal(err)
				}
			} else {
				mp = exported(t, c.loss)
			}
			c.mutate(mp)
			err := importBounded(t, marshal(t, mp))
			if !errors.Is(err, c.kind) || !contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %v saying %q", err, c.kind, c.want)
			}
		})
	}
}

// TestAttributeFlood: a million empty attributes are two bytes each in
// the file and hundreds in memory; the census refuses them before
// anything is decoded.
func TestAttributeFlood(t *testing.T) {
	mp := exported(t, model.Squared)
	file := marshal(t, mp)
	// Append the flood to the node's bytes by marshalling one node with
	// the attributes and swapping it in.
	n := findNode(mp, "LinearRegressor")
	for i := 0; i < 1<<20; i++ {
		n.Attribute = append(n.Attribute, &pb.AttributeProto{})
	}
	flood := marshal(t, mp)
	if len(flood) < len(file)+2<<20 {
		t.Fatalf("flood file is only %d bytes", len(flood))
	}
	err := importBounded(t, flood)
	if !errors.Is(err, ErrTooLarge) || !contains(err.Error(), "flood of tiny messages") {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
}

// TestTruncatedAndFlipped: every prefix and every single-bit flip of a
// small exported file imports or fails cleanly, within the memory bound.
func TestTruncatedAndFlipped(t *testing.T) {
	pre, err := Export(preprocessedModel(model.MissingImpute))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range [][]byte{marshal(t, exported(t, model.Squared)), marshal(t, exported(t, model.Logistic)), pre} {
		for cut := 0; cut < len(file); cut++ {
			if _, _, err := Import(file[:cut], Options{}); err == nil && cut < len(file)/2 {
				t.Fatalf("a file cut to %d of %d bytes imported", cut, len(file))
			}
		}
		flipped := make([]byte, len(file))
		for bit := 0; bit < 8*len(file); bit++ {
			copy(flipped, file)
			flipped[bit/8] ^= 1 << (bit % 8)
			if m, _, err := Import(flipped, Options{}); err == nil {
				if _, err := m.MarshalBinary(); err != nil {
					t.Fatalf("bit %d: an imported model does not encode: %v", bit, err)
				}
			}
		}
	}
}

// TestRealisticMemory: a wide model with one input per column stays well
// inside the bound the census enforces.
func TestRealisticMemory(t *testing.T) {
	file, err := Export(testModel(20000, model.Squared, 12))
	if err != nil {
		t.Fatal(err)
	}
	mp := &pb.ModelProto{}
	cost, err := census(file, mp.ProtoReflect().Descriptor(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-byte file, census %d bytes (%.1f times)", len(file), cost, float64(cost)/float64(len(file)))
	if err := importBounded(t, file); err != nil {
		t.Fatal(err)
	}
}
