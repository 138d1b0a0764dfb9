// Package onnxpb holds the Go types of the ONNX protobuf schema, generated
// by protoc-gen-go from onnx.proto. Do not edit onnx.pb.go; regenerate it.
//
// onnx.proto is the upstream file of ONNX release v1.12.0 (IR version 8),
// byte for byte the copy Debian's python3-onnx 1.12.0 installs, so the
// files the tests build with that package decode with exactly this schema.
// Newer ONNX releases only add fields; their files still decode here, the
// new fields kept as unknown fields.
//
// Regenerate with `go generate ./model/onnx/onnxpb/`: it needs protoc
// (Debian's protobuf-compiler) and runs the protoc-gen-go pinned by the
// tool directive in go.mod.
package onnxpb

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/linnet-edge/linnet/model/onnx/onnxpb onnx.proto"
