package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	pb "github.com/linnet-edge/linnet/model/onnx/onnxpb"
)

// maxElements bounds any one tensor; the data must be in the file anyway,
// so this only cuts short absurd claims before the length check.
const maxElements = 1 << 28

// tensor is a constant: an initializer, a Constant node's value or an
// attribute's tensor, with its values widened to float64 or int64.
type tensor struct {
	dtype pb.TensorProto_DataType
	dims  []int64
	f     []float64 // FLOAT, DOUBLE (and the integer types, converted)
	i     []int64   // INT64, INT32
	s     []string  // STRING
}

func (t *tensor) len() int {
	switch {
	case t.s != nil:
		return len(t.s)
	case t.i != nil:
		return len(t.i)
	}
	return len(t.f)
}

// elements returns the number of elements dims describe, or an error if a
// dimension is negative or the product passes maxElements.
func elements(dims []int64) (int, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("dimension %d in %v", d, dims)
		}
		if d > maxElements || (d > 0 && n > maxElements/d) {
			return 0, fmt.Errorf("dims %v claim more than 2^28 elements", dims)
		}
		n *= d
	}
	return int(n), nil
}

// decodeTensor checks t's dimensions against the data it holds before
// converting anything; what names it in errors.
func decodeTensor(t *pb.TensorProto, what string) (*tensor, error) {
	if t == nil {
		return nil, malformed("%s: no tensor", what)
	}
	if t.GetDataLocation() == pb.TensorProto_EXTERNAL || len(t.GetExternalData()) > 0 {
		return nil, unsupported("%s: data in an external file", what)
	}
	if t.GetSegment() != nil {
		return nil, unsupported("%s: segmented tensor", what)
	}
	n, err := elements(t.GetDims())
	if err != nil {
		return nil, malformed("%s: %v", what, err)
	}
	out := &tensor{dtype: pb.TensorProto_DataType(t.GetDataType()), dims: t.GetDims()}
	raw := t.GetRawData()
	hasRaw := t.RawData != nil
	// check reports whether the data holds exactly n elements of size bytes.
	check := func(typed int, size int) error {
		got, unit := typed, "values"
		if hasRaw {
			if typed > 0 {
				return malformed("%s: both raw_data and typed data", what)
			}
			got, unit = len(raw), "bytes"
			if len(raw)%size != 0 || len(raw)/size != n {
				return malformed("%s: dims %v claim %d elements but the tensor holds %d %s", what, t.GetDims(), n, got, unit)
			}
			return nil
		}
		if typed != n {
			return malformed("%s: dims %v claim %d elements but the tensor holds %d %s", what, t.GetDims(), n, got, unit)
		}
		return nil
	}
	switch out.dtype {
	case pb.TensorProto_FLOAT:
		if err := check(len(t.GetFloatData()), 4); err != nil {
			return nil, err
		}
		out.f = make([]float64, n)
		for i := range out.f {
			if hasRaw {
				out.f[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
			} else {
				out.f[i] = float64(t.FloatData[i])
			}
		}
	case pb.TensorProto_DOUBLE:
		if err := check(len(t.GetDoubleData()), 8); err != nil {
			return nil, err
		}
		out.f = make([]float64, n)
		for i := range out.f {
			if hasRaw {
				out.f[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			} else {
				out.f[i] = t.DoubleData[i]
			}
		}
	case pb.TensorProto_INT64:
		if err := check(len(t.GetInt64Data()), 8); err != nil {
			return nil, err
		}
		out.i = make([]int64, n)
		for i := range out.i {
			if hasRaw {
				out.i[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			} else {
				out.i[i] = t.Int64Data[i]
			}
		}
	case pb.TensorProto_INT32:
		if err := check(len(t.GetInt32Data()), 4); err != nil {
			return nil, err
		}
		out.i = make([]int64, n)
		for i := range out.i {
			if hasRaw {
				out.i[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			} else {
				out.i[i] = int64(t.Int32Data[i])
			}
		}
	case pb.TensorProto_STRING:
		if hasRaw {
			return nil, malformed("%s: a string tensor cannot hold raw_data", what)
		}
		if err := check(len(t.GetStringData()), 1); err != nil {
			return nil, err
		}
		out.s = make([]string, n)
		for i, b := range t.StringData {
			out.s[i] = string(b)
		}
	default:
		return nil, unsupported("%s: data type %v (linnet reads FLOAT, DOUBLE, INT64, INT32 and STRING tensors)", what, out.dtype)
	}
	if out.i != nil {
		out.f = make([]float64, n)
		for k, v := range out.i {
			out.f[k] = float64(v)
		}
	}
	return out, nil
}
