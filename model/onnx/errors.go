package onnx

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed is returned when a file is not a well-formed ONNX model:
	// it does not decode, a name is defined twice or never, the graph has a
	// cycle, a tensor's data does not match its dimensions.
	ErrMalformed = errors.New("onnx: malformed model")
	// ErrUnsupported is returned when a well-formed model is not one linnet
	// can serve: an op it does not know, a multi-class classifier, a
	// non-linear step, an attribute it does not implement.
	ErrUnsupported = errors.New("onnx: unsupported model")
	// ErrTooLarge is returned when a file, or a count or tensor inside it,
	// is beyond the limits (MaxFileSize, MemoryFactor, maxNodes...).
	ErrTooLarge = errors.New("onnx: too large")
)

// NodeError is a problem with one node of the graph: Node is its name (or
// "#i", its position, when it has none), Op its op type.
type NodeError struct {
	Node, Op string
	Err      error // ErrMalformed, ErrUnsupported or ErrTooLarge
	Reason   string
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("%v: node %q (%s): %s", e.Err, e.Node, e.Op, e.Reason)
}

func (e *NodeError) Unwrap() error { return e.Err }

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

func unsupported(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, a...))
}

func tooLarge(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrTooLarge, fmt.Sprintf(format, a...))
}
