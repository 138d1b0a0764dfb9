package onnx

import (
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/linnet-edge/linnet/model"
	pb "github.com/linnet-edge/linnet/model/onnx/onnxpb"
)

// The versions Export states. IR version 8 and opset 13 are read by
// every ONNX Runtime since 1.10 and by onnx 1.12's checker; the ai.onnx.ml
// operators used (LinearRegressor, LinearClassifier) exist since its
// version 1.
const (
	ExportIRVersion = 8
	ExportOpset     = 13
	ExportMLOpset   = 1
)

// Metadata keys Export writes and Import reads back.
const (
	metaTarget = "linnet.target"
	metaLoss   = "linnet.loss"
)

// Export encodes m as an ONNX model: one input [N, 1] per input column,
// named after it (float, or string for a one-hot column); an Imputer per
// numeric column when the model imputes missing values, a OneHotEncoder
// (zeros=1: an unseen category sets no feature) per one-hot column (a
// column's FillCategory has no ONNX form: there a missing text is an
// unseen category and sets no feature); the
// columns joined by Concat into the model's features; the standardization as Sub (Mean) and
// Div (Std) with float initializers, so the values stay exact; then
// ai.onnx.ml LinearRegressor (output "variable", [N, 1]) or, for a
// logistic model, LinearClassifier with post_transform LOGISTIC and class
// labels 0 and 1 (outputs "label", [N], and "probabilities", [N, 2]). A q8
// or q4 model is exported with its dequantized weights, what linnet
// computes with.
func Export(m *model.Model) ([]byte, error) {
	if _, err := m.MarshalBinary(); err != nil { // validates m
		return nil, err
	}
	n := len(m.Features)
	g := &pb.GraphProto{Name: proto.String("linnet")}
	parts, err := exportColumns(g, m)
	if err != nil {
		return nil, err
	}
	x := parts[0]
	if len(parts) > 1 {
		x = "features"
		g.Node = append(g.Node, node("Concat", "", "concat", parts, []string{x}, intAttr("axis", 1)))
	}
	identity := true
	for i := range m.Mean {
		identity = identity && m.Mean[i] == 0 && m.Std[i] == 1
	}
	if !identity {
		g.Initializer = append(g.Initializer, floatTensor("mean", m.Mean), floatTensor("std", m.Std))
		g.Node = append(g.Node,
			node("Sub", "", "center", []string{x, "mean"}, []string{"centered"}),
			node("Div", "", "scale", []string{"centered", "std"}, []string{"standardized"}))
		x = "standardized"
	}
	if m.Loss == model.Logistic {
		coef := make([]float32, 0, 2*n)
		for _, w := range m.Weights {
			coef = append(coef, -w)
		}
		coef = append(coef, m.Weights...)
		g.Node = append(g.Node, node("LinearClassifier", domainML, "linear", []string{x}, []string{"label", "probabilities"},
			floatsAttr("coefficients", coef),
			floatsAttr("intercepts", []float32{-m.Bias, m.Bias}),
			intsAttr("classlabels_ints", 0, 1),
			strAttr("post_transform", "LOGISTIC")))
		g.Output = append(g.Output, tensorInfo("label", pb.TensorProto_INT64, 0), tensorInfo("probabilities", pb.TensorProto_FLOAT, 2))
	} else {
		g.Node = append(g.Node, node("LinearRegressor", domainML, "linear", []string{x}, []string{"variable"},
			floatsAttr("coefficients", m.Weights),
			floatsAttr("intercepts", []float32{m.Bias})))
		g.Output = append(g.Output, tensorInfo("variable", pb.TensorProto_FLOAT, 1))
	}
	mp := &pb.ModelProto{
		IrVersion:       proto.Int64(ExportIRVersion),
		ProducerName:    proto.String("linnet"),
		ProducerVersion: proto.String(strconv.Itoa(model.FormatVersion)),
		ModelVersion:    proto.Int64(m.Version),
		DocString:       proto.String(fmt.Sprintf("linnet %s model of %q over %d features", m.Loss, m.Target, n)),
		OpsetImport: []*pb.OperatorSetIdProto{
			{Domain: proto.String(""), Version: proto.Int64(ExportOpset)},
			{Domain: proto.String(domainML), Version: proto.Int64(ExportMLOpset)},
		},
		MetadataProps: []*pb.StringStringEntryProto{
			{Key: proto.String(metaTarget), Value: proto.String(m.Target)},
			{Key: proto.String(metaLoss), Value: proto.String(string(m.Loss))},
		},
		Graph: g,
	}
	return proto.Marshal(mp)
}

// tensorInfo declares a float or int64 tensor [N, width] ([N] for width 0).
func tensorInfo(name string, t pb.TensorProto_DataType, width int64) *pb.ValueInfoProto {
	dims := []*pb.TensorShapeProto_Dimension{{Value: &pb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}}
	if width > 0 {
		dims = append(dims, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: width}})
	}
	return &pb.ValueInfoProto{
		Name: proto.String(name),
		Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(t)),
			Shape:    &pb.TensorShapeProto{Dim: dims},
		}}},
	}
}

func node(op, domain, name string, in, out []string, attrs ...*pb.AttributeProto) *pb.NodeProto {
	return &pb.NodeProto{OpType: proto.String(op), Domain: proto.String(domain), Name: proto.String(name), Input: in, Output: out, Attribute: attrs}
}

func floatTensor(name string, v []float32) *pb.TensorProto {
	return &pb.TensorProto{
		Name:      proto.String(name),
		DataType:  proto.Int32(int32(pb.TensorProto_FLOAT)),
		Dims:      []int64{int64(len(v))},
		FloatData: v,
	}
}

func intAttr(name string, v int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func intsAttr(name string, v ...int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_INTS.Enum(), Ints: v}
}

func floatsAttr(name string, v []float32) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_FLOATS.Enum(), Floats: v}
}

func strAttr(name, v string) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// exportColumns declares the graph inputs for m's columns and returns the
// names of the [N, k] tensors that, joined, are m's features. Hashed
// columns and missing indicators have no ai.onnx.ml counterpart.
func exportColumns(g *pb.GraphProto, m *model.Model) ([]string, error) {
	if m.Preprocessing == nil {
		for _, f := range m.Features {
			g.Input = append(g.Input, tensorInfo(f, pb.TensorProto_FLOAT, 1))
		}
		return m.Features, nil
	}
	pre := m.Preprocessing
	parts := make([]string, 0, len(pre.Columns))
	nan := float32(math.NaN())
	for i, c := range pre.Columns {
		if c.Indicator {
			return nil, fmt.Errorf("%w: column %q has a missing-value indicator, which ONNX cannot express with ai.onnx.ml operators", ErrUnsupported, c.Name)
		}
		id := strconv.Itoa(i)
		switch c.Kind {
		case model.Numeric:
			g.Input = append(g.Input, tensorInfo(c.Name, pb.TensorProto_FLOAT, 1))
			if pre.Missing != model.MissingImpute {
				parts = append(parts, c.Name)
				continue
			}
			out := "imputed" + id
			g.Node = append(g.Node, node("Imputer", domainML, "impute"+id, []string{c.Name}, []string{out},
				floatsAttr("imputed_value_floats", []float32{c.Fill}),
				&pb.AttributeProto{Name: proto.String("replaced_value_float"), Type: pb.AttributeProto_FLOAT.Enum(), F: &nan}))
			g.ValueInfo = append(g.ValueInfo, tensorInfo(out, pb.TensorProto_FLOAT, 1)) // no type inference either
			parts = append(parts, out)
		case model.OneHot:
			g.Input = append(g.Input, tensorInfo(c.Name, pb.TensorProto_STRING, 1))
			cats := make([][]byte, len(c.Categories))
			for k, v := range c.Categories {
				cats[k] = []byte(v)
			}
			enc, shape, out := "onehot"+id, "shape"+id, "encoded"+id
			g.Node = append(g.Node,
				node("OneHotEncoder", domainML, enc, []string{c.Name}, []string{enc},
					&pb.AttributeProto{Name: proto.String("cats_strings"), Type: pb.AttributeProto_STRINGS.Enum(), Strings: cats},
					intAttr("zeros", 1)),
				node("Reshape", "", "reshape"+id, []string{enc, shape}, []string{out}))
			// OneHotEncoder has no type inference in onnx 1.12: state its
			// output, [N, 1, k] float, for the checker's strict mode.
			info := tensorInfo(enc, pb.TensorProto_FLOAT, 1)
			info.Type.GetTensorType().Shape.Dim = append(info.Type.GetTensorType().Shape.Dim,
				&pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: int64(len(c.Categories))}})
			g.ValueInfo = append(g.ValueInfo, info)
			g.Initializer = append(g.Initializer, &pb.TensorProto{
				Name: proto.String(shape), DataType: proto.Int32(int32(pb.TensorProto_INT64)),
				Dims: []int64{2}, Int64Data: []int64{-1, int64(len(c.Categories))},
			})
			parts = append(parts, out)
		default:
			return nil, fmt.Errorf("%w: column %q is %s, which has no ONNX operator", ErrUnsupported, c.Name, c.Kind)
		}
	}
	return parts, nil
}
