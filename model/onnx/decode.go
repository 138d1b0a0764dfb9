package onnx

import (
	"fmt"
	"reflect"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/linnet-edge/linnet/model/onnx/onnxpb"
)

const (
	// MaxFileSize bounds the ONNX or JSON file Import accepts (the .lnm
	// limit: a model that large would not fit a .lnm file anyway).
	MaxFileSize = 256 << 20
	// MemoryFactor bounds the memory a decoded file may take, as a
	// multiple of its size, before anything is decoded. Real files stay
	// near 10 (one input per column, each a handful of small messages);
	// floods of empty messages are far above it.
	MemoryFactor = 32
	// memorySlack is added to the bound so tiny files are not refused for
	// the fixed cost of a few messages.
	memorySlack = 1 << 20
	// maxDepth bounds message nesting (graphs in attributes, nested types).
	maxDepth = 64
)

// decodeModel decodes an ONNX ModelProto after checking that doing so
// stays within MemoryFactor times the file size. The census and the
// decoding both use the protobuf module: the census reads field numbers
// and lengths with protowire and the generated descriptors, and only
// proto.Unmarshal interprets values.
func decodeModel(b []byte) (*onnxpb.ModelProto, error) {
	if len(b) > MaxFileSize {
		return nil, tooLarge("file is %d bytes, limit %d", len(b), MaxFileSize)
	}
	m := &onnxpb.ModelProto{}
	budget := int64(MemoryFactor)*int64(len(b)) + memorySlack
	cost, err := census(b, m.ProtoReflect().Descriptor(), 0)
	if err != nil {
		return nil, malformed("not an ONNX model: %v", err)
	}
	if cost > budget {
		return nil, tooLarge("decoding this %d-byte file would take about %d bytes of memory (limit %d times the file): it holds a flood of tiny messages", len(b), cost, MemoryFactor)
	}
	if err := (proto.UnmarshalOptions{RecursionLimit: maxDepth}).Unmarshal(b, m); err != nil {
		return nil, malformed("not an ONNX model: %v", err)
	}
	return m, nil
}

// census estimates the bytes proto.Unmarshal would allocate for message md
// encoded in b: the Go struct of every message (and its slot in the
// parent's slice, twice for append's growth), every repeated scalar, every
// string. It fails on a wire error so the caller can stop early.
func census(b []byte, md protoreflect.MessageDescriptor, depth int) (int64, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("messages nested deeper than %d", maxDepth)
	}
	fields := md.Fields()
	var cost int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		v := b[:n]
		b = b[n:]
		fd := fields.ByNumber(num)
		switch {
		case fd == nil:
			cost += int64(n) + 16 // kept as unknown bytes
		case fd.Kind() == protoreflect.MessageKind && typ == protowire.BytesType:
			body, _ := protowire.ConsumeBytes(v)
			sub, err := census(body, fd.Message(), depth+1)
			if err != nil {
				return 0, err
			}
			cost += sub + messageSize(fd.Message()) + 16
		case typ == protowire.BytesType && fd.IsList() && fd.Kind() != protoreflect.StringKind && fd.Kind() != protoreflect.BytesKind:
			// A packed run: fixed-size elements, or at most one varint a byte.
			size := scalarSize(fd.Kind())
			elems := int64(n)
			if fixed(fd.Kind()) {
				elems /= size
			}
			cost += 2 * elems * size
		case typ == protowire.BytesType:
			cost += int64(n) + 48 // a string or bytes value, its header and slot
		default:
			cost += 2 * scalarSize(fd.Kind())
		}
	}
	return cost, nil
}

func scalarSize(k protoreflect.Kind) int64 {
	switch k {
	case protoreflect.BoolKind:
		return 1
	case protoreflect.FloatKind, protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Sint32Kind,
		protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.EnumKind:
		return 4
	}
	return 8
}

func fixed(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind,
		protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return true
	}
	return false
}

var messageSizes sync.Map // protoreflect.FullName -> int64

// messageSize is the size of the generated Go struct of md.
func messageSize(md protoreflect.MessageDescriptor) int64 {
	if s, ok := messageSizes.Load(md.FullName()); ok {
		return s.(int64)
	}
	size := int64(256) // a generous default for a type not registered
	if mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName()); err == nil {
		size = int64(reflect.TypeOf(mt.New().Interface()).Elem().Size())
	}
	messageSizes.Store(md.FullName(), size)
	return size
}
