package onnx

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/linnet-edge/linnet/model"
	pb "github.com/linnet-edge/linnet/model/onnx/onnxpb"
)

// matmulGraph is X [N, width] (width 0: a symbolic "C") times W [3, 1]
// plus b.
func matmulGraph(t *testing.T, width int64) []byte {
	t.Helper()
	in := tensorInfo("X", pb.TensorProto_FLOAT, 1)
	if width == 0 {
		in.Type.GetTensorType().Shape.Dim[1].Value = &pb.TensorShapeProto_Dimension_DimParam{DimParam: "C"}
	} else {
		in.Type.GetTensorType().Shape.Dim[1].Value = &pb.TensorShapeProto_Dimension_DimValue{DimValue: width}
	}
	w := floatTensor("W", []float32{1, -2, 0.5})
	w.Dims = []int64{3, 1}
	mp := &pb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*pb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &pb.GraphProto{
			Input:       []*pb.ValueInfoProto{in},
			Output:      []*pb.ValueInfoProto{tensorInfo("y", pb.TensorProto_FLOAT, 1)},
			Initializer: []*pb.TensorProto{w, floatTensor("b", []float32{4})},
			Node: []*pb.NodeProto{
				node("MatMul", "", "mm", []string{"X", "W"}, []string{"xw"}),
				node("Add", "", "add", []string{"xw", "b"}, []string{"y"}),
			},
		},
	}
	return marshal(t, mp)
}

func TestFeatureNames(t *testing.T) {
	m, _, err := Import(matmulGraph(t, 3), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Features, []string{"X_0", "X_1", "X_2"}) || m.Target != "y" {
		t.Errorf("features %v, target %q", m.Features, m.Target)
	}
	if got := model.NewPredictor(m).Predict([]float32{1, 1, 2}); got != 4 {
		t.Errorf("prediction %v, want 4", got)
	}
	// A symbolic width needs --features; the names are the columns'.
	names := []string{"temp", "hum", "wind"}
	m, _, err = Import(matmulGraph(t, 0), Options{Features: names, Target: "load"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Features, names) || m.Target != "load" {
		t.Errorf("features %v, target %q", m.Features, m.Target)
	}
	if _, _, err := Import(matmulGraph(t, 0), Options{Features: names[:2]}); err == nil || !contains(err.Error(), "weight matrix has shape [3 1], want [2, outputs]") {
		t.Errorf("two names for a [3, 1] matrix: %v", err)
	}
	if _, _, err := Import(matmulGraph(t, 3), Options{Features: names[:2]}); err == nil || !contains(err.Error(), "2 feature names for the graph's 3 input columns") {
		t.Errorf("two names for three columns: %v", err)
	}
}
