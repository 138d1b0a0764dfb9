"""Builds the ONNX graphs the Go tests import, and checks exported files.

    graphs.py build DIR   one DIR/<case>.onnx per supported op pattern, the
                          inputs DIR/<case>.x (1000 rows, float32, row-major,
                          the graph inputs' columns in order; also as
                          DIR/<case>.rows.json, raw values, when every input
                          is one column) and what numpy
                          computes for them DIR/<case>.y (float64): the
                          regression value, or P(class 1); DIR/manifest.json
    graphs.py check F...  onnx.checker.check_model(full_check=True) on each
    graphs.py eval F R O  numpy's evaluation of model F on the rows of JSON
                          file R (raw values, one per graph input; null is
                          NaN): the regression value or P(class 1), to O as
                          float64

Regression intercepts keep predictions away from 0, where a relative
tolerance means nothing for float32 sums.

The layouts of the skl_* cases are the ones skl2onnx writes for those
scikit-learn estimators (its operator_converters: linear_regressor.py,
linear_classifier.py, scaler_op.py, concat, zip_map.py), rebuilt with
onnx.helper because skl2onnx itself is not a Debian package. The expected
values come from run(), a numpy interpreter of the same graph, not from
the parameters, so a graph linnet misreads cannot pass.

Needs python3-onnx and python3-numpy (Debian).
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROWS = 1000
OPSET = [helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 1)]
rng = np.random.default_rng(15)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def model(nodes, inputs, outputs, inits=(), opset=OPSET, name="case"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=opset, producer_name="skl2onnx", producer_version="1.16.0")
    m.ir_version = 8
    onnx.checker.check_model(m)
    # onnx 1.12 infers no types for ZipMap (seq(map)), ArrayFeatureExtractor,
    # OneHotEncoder or Imputer: the full check needs value_info for them
    if not any(n.op_type in ("ZipMap", "ArrayFeatureExtractor", "OneHotEncoder", "Imputer") for n in nodes):
        onnx.checker.check_model(m, full_check=True)
    return m


def tin(name, width, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, [None, width])


def zipmap_out(name, key=TensorProto.INT64):
    """seq(map(key, float)), what ZipMap returns."""
    vi = onnx.ValueInfoProto(name=name)
    mt = vi.type.sequence_type.elem_type.map_type
    mt.key_type = key
    mt.value_type.tensor_type.elem_type = TensorProto.FLOAT
    return vi


# ---- a numpy interpreter of the ops the cases use -------------------------

def attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def linear_classifier(x, a):
    classes = a.get("classlabels_ints") or a.get("classlabels_strings")
    coef = np.array(a["coefficients"], dtype=np.float64).reshape(-1, x.shape[1])
    icpt = np.array(a.get("intercepts", [0.0] * coef.shape[0]), dtype=np.float64)
    s = x @ coef.T + icpt
    pt = a.get("post_transform", b"NONE").decode()
    if coef.shape[0] == 1:  # one row for two classes: scores [-s, s]
        s = np.hstack([-s, s])
    if pt == "LOGISTIC":
        p = sigmoid(s)
    elif pt == "SOFTMAX":
        e = np.exp(s - s.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
    else:
        p = s
    label = np.array(classes)[np.argmax(s, axis=1)]
    return label, p


def run(m, feeds):
    v = dict(feeds)
    for t in m.graph.initializer:
        v[t.name] = numpy_helper.to_array(t).astype(np.float64) if t.data_type in (1, 11) else numpy_helper.to_array(t)
    for n in m.graph.node:
        a = attrs(n)
        x = [v[i] if i else None for i in n.input]
        op = n.op_type
        if op == "Scaler":
            y = [(x[0] - np.array(a["offset"])) * np.array(a["scale"])]
        elif op == "LinearRegressor":
            c = np.array(a["coefficients"]).reshape(-1, x[0].shape[1])
            y = [x[0] @ c.T + np.array(a.get("intercepts", [0.0]))]
        elif op == "LinearClassifier":
            y = list(linear_classifier(x[0], a))
        elif op == "Normalizer":
            assert a["norm"] == b"L1"
            y = [x[0] / np.abs(x[0]).sum(axis=1, keepdims=True)]
        elif op == "ZipMap":
            y = [x[0]]  # keep the tensor: the column order is the classes'
        elif op == "Imputer":
            assert np.isnan(a["replaced_value_float"])
            y = [np.where(np.isnan(x[0]), np.array(a["imputed_value_floats"]), x[0])]
        elif op == "OneHotEncoder":
            cats = [c.decode() for c in a["cats_strings"]] if "cats_strings" in a else a["cats_int64s"]
            y = [np.stack([(x[0] == c).astype(np.float64) for c in cats], axis=-1)]
        elif op == "Cast" and a["to"] in (TensorProto.INT64, TensorProto.INT32):
            y = [x[0].astype(np.int64)]
        elif op in ("Cast", "Identity"):
            y = [x[0]]
        elif op in ("Concat", "FeatureVectorizer"):
            y = [np.hstack(x)]
        elif op == "MatMul":
            y = [x[0] @ x[1]]
        elif op == "Gemm":
            b = x[1].T if a.get("transB", 0) else x[1]
            out = a.get("alpha", 1.0) * (x[0] @ b)
            if len(x) > 2:
                out = out + a.get("beta", 1.0) * x[2]
            y = [out]
        elif op == "Add":
            y = [x[0] + x[1]]
        elif op == "Sub":
            y = [x[0] - x[1]]
        elif op == "Mul":
            y = [x[0] * x[1]]
        elif op == "Div":
            y = [x[0] / x[1]]
        elif op == "Reshape":
            y = [x[0].reshape(x[1])]
        elif op == "Abs":
            y = [np.abs(x[0])]
        elif op == "ReduceSum":
            y = [x[0].sum(axis=tuple(x[1]), keepdims=bool(a.get("keepdims", 1)))]
        elif op == "ArgMax":
            y = [np.argmax(x[0], axis=a["axis"])[:, None] if a.get("keepdims", 1) else np.argmax(x[0], axis=a["axis"])]
        elif op == "ArrayFeatureExtractor":
            y = [x[0][..., x[1]]]  # along the last axis
        elif op == "Sigmoid":
            y = [sigmoid(x[0])]
        else:
            raise ValueError("no numpy for " + op)
        for name, val in zip(n.output, y):
            v[name] = val
    return v


# ---- the cases ------------------------------------------------------------

def skl_scaler_linreg():
    """Pipeline(StandardScaler, LinearRegression), FloatTensorType([None, 4])."""
    mean, std = rng.normal(50, 20, 4), rng.uniform(0.5, 30, 4)
    coef, icpt = rng.normal(0, 3, 4), 40.0
    nodes = [
        helper.make_node("Scaler", ["float_input"], ["variable1"], name="Scaler", domain="ai.onnx.ml",
                         offset=f32(mean).tolist(), scale=f32(1 / std).tolist()),
        helper.make_node("LinearRegressor", ["variable1"], ["variable"], name="LinearRegressor", domain="ai.onnx.ml",
                         coefficients=f32(coef).tolist(), intercepts=f32([icpt]).tolist()),
    ]
    m = model(nodes, [tin("float_input", 4)], [tin("variable", 1)])
    x = rng.normal(mean, std, (ROWS, 4))
    return m, {"float_input": x}, "variable", False


def skl_sgdregressor_dataframe():
    """SGDRegressor on a DataFrame of three columns: one input per column,
    Concat into merged_input, then LinearRegressor (intercept_ is an array)."""
    coef, icpt = rng.normal(0, 2, 3), rng.normal(100, 1, 1)
    nodes = [
        helper.make_node("Concat", ["a", "b", "c"], ["merged_input"], name="Concat", axis=1),
        helper.make_node("LinearRegressor", ["merged_input"], ["variable"], name="LinearRegressor",
                         domain="ai.onnx.ml", coefficients=f32(coef).tolist(), intercepts=f32(icpt).tolist()),
    ]
    m = model(nodes, [tin("a", 1), tin("b", 1), tin("c", 1)], [tin("variable", 1)])
    x = rng.normal(0, 5, (ROWS, 3))
    return m, {"a": x[:, :1], "b": x[:, 1:2], "c": x[:, 2:]}, "variable", False


def skl_linreg_double():
    """LinearRegression with DoubleTensorType: MatMul, Add, Reshape [-1, 1]."""
    coef, icpt = rng.normal(0, 2, 5), 100.0
    inits = [
        numpy_helper.from_array(coef.reshape(-1, 1), "coef"),
        numpy_helper.from_array(np.array([icpt]), "intercept"),
        numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "shape_tensor"),
    ]
    nodes = [
        helper.make_node("MatMul", ["float_input", "coef"], ["multiplied"], name="MatMul"),
        helper.make_node("Add", ["multiplied", "intercept"], ["resh"], name="Add"),
        helper.make_node("Reshape", ["resh", "shape_tensor"], ["variable"], name="Reshape"),
    ]
    m = model(nodes, [tin("float_input", 5, TensorProto.DOUBLE)], [tin("variable", 1, TensorProto.DOUBLE)], inits)
    x = rng.normal(0, 3, (ROWS, 5))
    return m, {"float_input": x}, "variable", False


def skl_scaler_double():
    """StandardScaler in double: Sub (mean) and Div (scale), then
    LinearRegressor of the float path (a custom pipeline)."""
    mean, std = rng.normal(1000, 100, 3), rng.uniform(10, 50, 3)
    inits = [numpy_helper.from_array(f32(mean), "mean"), numpy_helper.from_array(f32(std), "std")]
    nodes = [
        helper.make_node("Sub", ["X", "mean"], ["sub"], name="Sub"),
        helper.make_node("Div", ["sub", "std"], ["scaled"], name="Div"),
        helper.make_node("LinearRegressor", ["scaled"], ["variable"], name="LinearRegressor", domain="ai.onnx.ml",
                         coefficients=f32(rng.normal(0, 4, 3)).tolist(), intercepts=[-80.0]),
    ]
    m = model(nodes, [tin("X", 3)], [tin("variable", 1)], inits)
    x = rng.normal(mean, std, (ROWS, 3))
    return m, {"X": x}, "variable", False


def logreg_nodes(coef, icpt, labels, normalizer):
    """What skl2onnx writes for a binary LogisticRegression with ZipMap."""
    cl = {"classlabels_strings": labels} if isinstance(labels[0], str) else {"classlabels_ints": labels}
    zl = {"classlabels_strings": labels} if isinstance(labels[0], str) else {"classlabels_int64s": labels}
    prob = "probability_tensor" if normalizer else "probabilities"
    nodes = [
        helper.make_node("LinearClassifier", ["float_input"], ["label", prob], name="LinearClassifier",
                         domain="ai.onnx.ml", coefficients=f32(np.concatenate([-coef, coef])).tolist(),
                         intercepts=f32([-icpt, icpt]).tolist(), multi_class=0, post_transform="LOGISTIC", **cl),
    ]
    if normalizer:
        nodes.append(helper.make_node("Normalizer", [prob], ["probabilities"], name="Normalizer",
                                      domain="ai.onnx.ml", norm="L1"))
    if isinstance(labels[0], str):
        nodes.append(helper.make_node("Identity", ["label"], ["output_label"], name="Identity"))
    else:
        nodes.append(helper.make_node("Cast", ["label"], ["output_label"], name="Cast", to=TensorProto.INT64))
    nodes.append(helper.make_node("ZipMap", ["probabilities"], ["output_probability"], name="ZipMap",
                                  domain="ai.onnx.ml", **zl))
    return nodes


def skl_logreg_ints():
    """LogisticRegression, classes 0/1, with the ovr Normalizer, Cast, ZipMap."""
    coef, icpt = rng.normal(0, 1, 3), 0.3
    nodes = logreg_nodes(coef, icpt, [0, 1], normalizer=True)
    outs = [helper.make_tensor_value_info("output_label", TensorProto.INT64, [None]), zipmap_out("output_probability")]
    m = model(nodes, [tin("float_input", 3)], outs)
    return m, {"float_input": rng.normal(0, 2, (ROWS, 3))}, "output_probability", True


def skl_logreg_double():
    """LogisticRegression with DoubleTensorType: MatMul and Add to raw
    scores; ArgMax, ArrayFeatureExtractor on the classes, Cast, Reshape,
    Cast for the label; Sigmoid, then Abs, ReduceSum and Div for the L1
    normalization (Normalizer only makes floats); zipmap=False."""
    coef, icpt = rng.normal(0, 1, 3), -0.4
    inits = [
        numpy_helper.from_array(np.stack([-coef, coef], axis=1), "coef"),
        numpy_helper.from_array(np.array([[-icpt, icpt]]), "intercept"),
        numpy_helper.from_array(np.array([0, 1], dtype=np.int32), "classes"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "shape_tensor"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
    ]
    nodes = [
        helper.make_node("MatMul", ["float_input", "coef"], ["multiplied"], name="MatMul"),
        helper.make_node("Add", ["multiplied", "intercept"], ["raw_scores"], name="Add"),
        helper.make_node("ArgMax", ["raw_scores"], ["label1"], name="ArgMax", axis=1),
        helper.make_node("ArrayFeatureExtractor", ["classes", "label1"], ["array_feature_extractor_result"],
                         name="ArrayFeatureExtractor", domain="ai.onnx.ml"),
        helper.make_node("Cast", ["array_feature_extractor_result"], ["cast2_result"], name="Cast",
                         to=TensorProto.DOUBLE),
        helper.make_node("Reshape", ["cast2_result", "shape_tensor"], ["reshaped_result"], name="Reshape"),
        helper.make_node("Cast", ["reshaped_result"], ["label"], name="Cast1", to=TensorProto.INT64),
        helper.make_node("Sigmoid", ["raw_scores"], ["raw_scoressig"], name="Sigmoid"),
        helper.make_node("Abs", ["raw_scoressig"], ["norm_abs"], name="Abs"),
        helper.make_node("ReduceSum", ["norm_abs", "axis"], ["norm"], name="ReduceSum", keepdims=1),
        helper.make_node("Div", ["raw_scoressig", "norm"], ["probabilities"], name="Div"),
    ]
    outs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, 2])]
    m = model(nodes, [tin("float_input", 3, TensorProto.DOUBLE)], outs, inits)
    return m, {"float_input": rng.normal(0, 2, (ROWS, 3))}, "probabilities", True


def skl_logreg_strings():
    """LogisticRegression, classes "no"/"yes", Identity on the label."""
    coef, icpt = rng.normal(0, 1, 4), -0.5
    nodes = logreg_nodes(coef, icpt, ["no", "yes"], normalizer=False)
    outs = [helper.make_tensor_value_info("output_label", TensorProto.STRING, [None]),
            zipmap_out("output_probability", TensorProto.STRING)]
    m = model(nodes, [tin("float_input", 4)], outs)
    return m, {"float_input": rng.normal(0, 2, (ROWS, 4))}, "output_probability", True


def skl_scaler_logreg_nozipmap():
    """StandardScaler + LogisticRegression, zipmap=False: probabilities tensor."""
    mean, std = rng.normal(10, 5, 3), rng.uniform(1, 4, 3)
    coef, icpt = rng.normal(0, 1, 3), 0.1
    nodes = [helper.make_node("Scaler", ["float_input"], ["variable"], name="Scaler", domain="ai.onnx.ml",
                              offset=f32(mean).tolist(), scale=f32(1 / std).tolist())]
    nodes += logreg_nodes(coef, icpt, [0, 1], normalizer=False)[:1]
    nodes[1].input[0] = "variable"
    nodes.append(helper.make_node("Cast", ["label"], ["output_label"], name="Cast", to=TensorProto.INT64))
    outs = [helper.make_tensor_value_info("output_label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])]
    m = model(nodes, [tin("float_input", 3)], outs)
    return m, {"float_input": rng.normal(mean, std, (ROWS, 3))}, "probabilities", True


def svc_scores():
    """A classifier without post_transform (LinearSVC-like): two antisymmetric
    rows; linnet serves sigmoid(scores[:, 1])."""
    coef, icpt = rng.normal(0, 1, 2), 0.2
    nodes = [helper.make_node("LinearClassifier", ["X"], ["label", "scores"], name="LinearClassifier",
                              domain="ai.onnx.ml", coefficients=f32(np.concatenate([-coef, coef])).tolist(),
                              intercepts=f32([-icpt, icpt]).tolist(), classlabels_ints=[0, 1],
                              post_transform="NONE")]
    outs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 2])]
    m = model(nodes, [tin("X", 2)], outs)
    return m, {"X": rng.normal(0, 2, (ROWS, 2))}, "scores:sigmoid1", True


def skl_column_selection():
    """ColumnTransformer on one array input: ArrayFeatureExtractor picks
    columns 0, 1, 3 for a StandardScaler and column 4 for "passthrough"
    (Identity); column 2 is dropped; Concat; LinearRegressor."""
    mean, std = rng.normal(5, 2, 3), rng.uniform(1, 3, 3)
    inits = [numpy_helper.from_array(np.array([0, 1, 3], dtype=np.int64), "idx_num"),
             numpy_helper.from_array(np.array([4], dtype=np.int64), "idx_pass")]
    nodes = [
        helper.make_node("ArrayFeatureExtractor", ["X", "idx_num"], ["num_cols"], name="AFE", domain="ai.onnx.ml"),
        helper.make_node("Scaler", ["num_cols"], ["num_scaled"], name="Scaler", domain="ai.onnx.ml",
                         offset=f32(mean).tolist(), scale=f32(1 / std).tolist()),
        helper.make_node("ArrayFeatureExtractor", ["X", "idx_pass"], ["pass_cols"], name="AFE1", domain="ai.onnx.ml"),
        helper.make_node("Identity", ["pass_cols"], ["passed"], name="Identity"),
        helper.make_node("Concat", ["num_scaled", "passed"], ["merged"], name="Concat", axis=1),
        helper.make_node("LinearRegressor", ["merged"], ["variable"], name="LinearRegressor", domain="ai.onnx.ml",
                         coefficients=f32(rng.normal(0, 2, 4)).tolist(), intercepts=[100.0]),
    ]
    m = model(nodes, [tin("X", 5)], [tin("variable", 1)], inits)
    return m, {"X": rng.normal(5, 2, (ROWS, 5))}, "variable", False


def skl_onehot_ints():
    """OneHotEncoder of an integer column (skl2onnx casts it to INT64 and
    writes cats_int64s) beside a numeric one, LinearRegressor."""
    cats = [1, 2, 3, 5]
    shape = numpy_helper.from_array(np.array([-1, len(cats)], dtype=np.int64), "shape_tensor")
    nodes = [
        helper.make_node("Cast", ["rooms"], ["roomscast"], name="Cast", to=TensorProto.INT64),
        helper.make_node("OneHotEncoder", ["roomscast"], ["roomsout"], name="OneHotEncoder", domain="ai.onnx.ml",
                         cats_int64s=cats, zeros=1),
        helper.make_node("Reshape", ["roomsout", "shape_tensor"], ["onehot"], name="Reshape"),
        helper.make_node("Concat", ["area", "onehot"], ["merged"], name="Concat", axis=1),
        helper.make_node("LinearRegressor", ["merged"], ["variable"], name="LinearRegressor", domain="ai.onnx.ml",
                         coefficients=f32(np.concatenate([[1.5], rng.normal(0, 20, 4)])).tolist(), intercepts=[100.0]),
    ]
    m = model(nodes, [tin("area", 1), tin("rooms", 1, TensorProto.INT64)], [tin("variable", 1)], [shape])
    rooms = rng.choice(cats + [4], (ROWS, 1)).astype(np.float64)  # 4: never seen
    return m, {"area": rng.normal(80, 20, (ROWS, 1)), "rooms": rooms}, "variable", False


def feature_vectorizer():
    """FeatureVectorizer of three numeric inputs (2 + 1 + 2 columns), Scaler,
    LinearRegressor."""
    mean, std = rng.normal(0, 10, 5), rng.uniform(1, 5, 5)
    nodes = [
        helper.make_node("FeatureVectorizer", ["p", "q", "r"], ["fv"], name="FeatureVectorizer",
                         domain="ai.onnx.ml", inputdimensions=[2, 1, 2]),
        helper.make_node("Scaler", ["fv"], ["scaled"], name="Scaler", domain="ai.onnx.ml",
                         offset=f32(mean).tolist(), scale=f32(1 / std).tolist()),
        helper.make_node("LinearRegressor", ["scaled"], ["variable"], name="LinearRegressor", domain="ai.onnx.ml",
                         coefficients=f32(rng.normal(0, 2, 5)).tolist(), intercepts=[50.0]),
    ]
    m = model(nodes, [tin("p", 2), tin("q", 1), tin("r", 2)], [tin("variable", 1)])
    x = rng.normal(mean, std, (ROWS, 5))
    return m, {"p": x[:, :2], "q": x[:, 2:3], "r": x[:, 3:]}, "variable", False


def torch_gemm():
    """torch.nn.Linear(6, 1) as torch.onnx.export writes it: Gemm, transB=1."""
    w, b = rng.normal(0, 1, (1, 6)), rng.normal(60, 1, 1)
    inits = [numpy_helper.from_array(f32(w), "fc.weight"), numpy_helper.from_array(f32(b), "fc.bias")]
    nodes = [helper.make_node("Gemm", ["input", "fc.weight", "fc.bias"], ["output"], name="/fc/Gemm",
                              alpha=1.0, beta=1.0, transB=1)]
    m = model(nodes, [tin("input", 6)], [tin("output", 1)], inits, opset=[helper.make_opsetid("", 13)])
    return m, {"input": rng.normal(0, 2, (ROWS, 6))}, "output", False


def matmul_add_sigmoid():
    """A Keras/tf2onnx-style logistic head: MatMul, Add, Sigmoid."""
    w, b = rng.normal(0, 1, (4, 1)), rng.normal(0, 0.5, 1)
    inits = [numpy_helper.from_array(f32(w), "dense/kernel"), numpy_helper.from_array(f32(b), "dense/bias")]
    nodes = [
        helper.make_node("MatMul", ["x", "dense/kernel"], ["mm"], name="dense/MatMul"),
        helper.make_node("Add", ["mm", "dense/bias"], ["logit"], name="dense/BiasAdd"),
        helper.make_node("Sigmoid", ["logit"], ["prob"], name="dense/Sigmoid"),
    ]
    m = model(nodes, [tin("x", 4)], [tin("prob", 1)], inits, opset=[helper.make_opsetid("", 13)])
    return m, {"x": rng.normal(0, 2, (ROWS, 4))}, "prob", True


def two_linear_layers():
    """Linear(5, 3) then Linear(3, 1) with no activation: one affine map."""
    w1, b1 = rng.normal(0, 1, (5, 3)), rng.normal(0, 1, 3)
    w2, b2 = rng.normal(0, 1, (3, 1)), np.array([100.0])
    inits = [numpy_helper.from_array(f32(a), n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="l1/MatMul"),
        helper.make_node("Add", ["h0", "b1"], ["h"], name="l1/Add"),
        helper.make_node("MatMul", ["h", "w2"], ["o0"], name="l2/MatMul"),
        helper.make_node("Add", ["o0", "b2"], ["y"], name="l2/Add"),
    ]
    m = model(nodes, [tin("x", 5)], [tin("y", 1)], inits, opset=[helper.make_opsetid("", 13)])
    return m, {"x": rng.normal(0, 2, (ROWS, 5))}, "y", False


def skl_column_transformer():
    """Pipeline(ColumnTransformer([("num", SimpleImputer(), ["age", "income"]),
    ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])]),
    LogisticRegression()) on a DataFrame: one input per column; Concat and
    Imputer for the numbers, OneHotEncoder and Reshape for the text, Concat,
    then the classifier as in skl_logreg_ints."""
    cats = ["lyon", "nice", "paris"]
    fills = [41.5, 52000.0]
    coef, icpt = np.concatenate([rng.normal(0, 0.05, 1), rng.normal(0, 2e-5, 1), rng.normal(0, 1, 3)]), -0.2
    shape = numpy_helper.from_array(np.array([-1, len(cats)], dtype=np.int64), "shape_tensor")
    nodes = [
        helper.make_node("Concat", ["age", "income"], ["merged_columns"], name="Concat", axis=1),
        helper.make_node("Imputer", ["merged_columns"], ["variable"], name="Imputer", domain="ai.onnx.ml",
                         imputed_value_floats=fills, replaced_value_float=float("nan")),
        helper.make_node("OneHotEncoder", ["city"], ["cityout"], name="OneHotEncoder", domain="ai.onnx.ml",
                         cats_strings=cats, zeros=1),
        helper.make_node("Reshape", ["cityout", "shape_tensor"], ["variable1"], name="Reshape"),
        helper.make_node("Concat", ["variable", "variable1"], ["transformed_column"], name="Concat1", axis=1),
    ]
    clf = logreg_nodes(coef, icpt, [0, 1], normalizer=True)
    clf[0].input[0] = "transformed_column"
    nodes += clf
    outs = [helper.make_tensor_value_info("output_label", TensorProto.INT64, [None]), zipmap_out("output_probability")]
    m = model(nodes, [tin("age", 1), tin("income", 1), tin("city", 1, TensorProto.STRING)], outs, [shape])
    age = rng.normal(40, 12, (ROWS, 1))
    income = rng.normal(50000, 15000, (ROWS, 1))
    age[rng.random(ROWS) < 0.1] = np.nan
    income[rng.random(ROWS) < 0.1] = np.nan
    city = rng.choice(cats + ["brest"], (ROWS, 1)).astype(object)  # brest: never seen
    return m, {"age": age, "income": income, "city": city}, "output_probability", True


CASES = [skl_column_transformer, skl_scaler_linreg, skl_sgdregressor_dataframe, skl_linreg_double, skl_scaler_double,
         skl_logreg_ints, skl_logreg_double, skl_logreg_strings, skl_scaler_logreg_nozipmap, svc_scores,
         skl_column_selection, skl_onehot_ints, feature_vectorizer, torch_gemm, matmul_add_sigmoid, two_linear_layers]


def build(out):
    manifest = []
    for case in CASES:
        m, feeds, output, logistic = case()
        name = case.__name__
        onnx.save(m, os.path.join(out, name + ".onnx"))
        # The reading linnet gets is float32: evaluate the graph on exactly that.
        feeds = {k: v if v.dtype == object else f32(v).astype(np.float64) for k, v in feeds.items()}
        ins = [i.name for i in m.graph.input if i.name in feeds]
        text = any(feeds[i].dtype == object for i in ins)
        # Rows as JSON too (numbers, null for NaN, strings), for the models
        # whose preprocessing turns columns into other features.
        if all(feeds[i].shape[1] == 1 for i in ins):
            rows = [[None if isinstance(v, float) and np.isnan(v) else v for v in row]
                    for row in zip(*[feeds[i][:, 0].tolist() for i in ins])]
            with open(os.path.join(out, name + ".rows.json"), "w") as f:
                json.dump(rows, f)
        x = np.zeros((ROWS, len(ins))) if text else np.hstack([feeds[i] for i in ins])
        vals = run(m, feeds)
        if output == "scores:sigmoid1":
            y = sigmoid(vals["scores"][:, 1])
        elif logistic and vals[output].ndim == 2 and vals[output].shape[1] == 2:
            y = vals[output][:, 1]
        else:
            y = vals[output].reshape(-1)
        f32(x).tofile(os.path.join(out, name + ".x"))
        np.asarray(y, dtype=np.float64).tofile(os.path.join(out, name + ".y"))
        manifest.append({"name": name, "columns": int(x.shape[1]), "rows": ROWS, "logistic": logistic, "text": text})
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)


def check(paths):
    for p in paths:
        onnx.checker.check_model(onnx.load(p), full_check=True)
        print("ok", p)


def evaluate(path, rows_path, out):
    m = onnx.load(path)
    with open(rows_path) as f:
        rows = json.load(f)
    feeds = {}
    for k, inp in enumerate(m.graph.input):
        col = [r[k] for r in rows]
        if inp.type.tensor_type.elem_type == TensorProto.STRING:
            feeds[inp.name] = np.array(col, dtype=object).reshape(-1, 1)
        else:
            feeds[inp.name] = f32([np.nan if v is None else v for v in col]).astype(np.float64).reshape(-1, 1)
    vals = run(m, feeds)
    y = vals[m.graph.output[-1].name]
    y = y[:, 1] if y.ndim == 2 and y.shape[1] == 2 else y.reshape(-1)
    np.asarray(y, dtype=np.float64).tofile(out)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    elif sys.argv[1] == "check":
        check(sys.argv[2:])
    elif sys.argv[1] == "eval":
        evaluate(*sys.argv[2:5])
