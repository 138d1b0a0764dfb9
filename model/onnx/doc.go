// Package onnx brings linear models trained elsewhere into linnet and takes
// linnet's models out again: ONNX graphs (the layouts skl2onnx writes for
// scikit-learn's linear models and their preprocessing, and plain
// MatMul/Gemm + Add (+ Sigmoid) graphs as PyTorch or TensorFlow converters
// write them) and a plain JSON form of coefficients.
//
// Import never runs a graph. It walks the graph once, in topological
// order, and follows every value symbolically: a value is a list of
// standardized columns (an input feature, shifted and scaled), affine
// forms over such columns (what MatMul, Gemm and the ai.onnx.ml linear
// operators produce), or the binary probability, scores or label of a
// classifier. The graph's prediction output must come out as one affine
// form z, or a sigmoid of one, which is exactly a linnet model:
//
//	z = bias + sum_i w_i * (x_i - mean_i) / std_i
//
// The shift and scale a column carries when it first meets a weight matrix
// become the model's Mean and Std, so a Scaler's statistics stay the
// model's own and quantization sees standardized weights. The graph's
// inputs become the model's Preprocessing columns: an Imputer's values
// their Fill, a OneHotEncoder's categories (of a string input) a OneHot
// column, whose features are the categories in order. Anything that is
// not affine (a ReLU between two MatMuls, a multi-class softmax, a tree) is
// refused with an error naming the node, its op and why.
//
// Files are untrusted. Before proto.Unmarshal decodes a file, a census
// walks its fields with the descriptors of the generated types and
// refuses a file whose decoded form would take more than MemoryFactor
// times its size (a million empty attributes are two bytes each on disk
// and hundreds of bytes each in memory); the evaluation that follows
// allocates in proportion to what was decoded. Tensors are checked against
// the bytes they actually hold before anything is allocated for them.
package onnx
