"""The merged graph rewritten in standard tensor operators, for execution providers such as
CUDA that have no kernels for the ``ai.onnx.ml`` domain.

ONNX Runtime runs ``TreeEnsembleClassifier``, ``LinearClassifier`` and ``Scaler`` on the CPU
only; on a CUDA session those nodes would fall back to the CPU with copies at every boundary.
:func:`tensor_graph` replaces each of them by operators that have CUDA kernels (Gather,
comparisons, MatMul, Softmax, ...), leaving the rest of the graph as it is:

- a tree ensemble as matrices, the way Hummingbird's GEMM strategy compiles trees: the
  feature of every internal node gathered from the row, all conditions evaluated at once,
  ``conditions @ paths == true_turns`` marking the one leaf each tree reaches, and
  ``leaves @ values`` summing the leaf weights per class (then the base values and the
  post transform);
- the scaler as a subtraction and a multiplication, the linear classifier as a MatMul, an
  addition and a softmax, and ``LpNormalization`` (p = 1) as a division by the sum of
  absolute values, so the graph needs nothing beyond the most common operators.

The rewrite is exact in float32 arithmetic up to summation order; the runtime checks the
rewritten graph against the original on the bundle's held-out rows before serving it.
Anything it does not implement is refused by name (:class:`TensorGraphError`).
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ML = "ai.onnx.ml"
_COMPARE = {
    "BRANCH_LEQ": ("Greater", True),
    "BRANCH_LT": ("Less", False),
    "BRANCH_GTE": ("Less", True),
    "BRANCH_GT": ("Greater", False),
    "BRANCH_EQ": ("Equal", False),
    "BRANCH_NEQ": ("Equal", True),
}  # (op, negate)


class TensorGraphError(ValueError):
    """A node the rewrite does not implement; the message names it."""


def tensor_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every ``ai.onnx.ml`` node replaced by standard operators."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    for node in graph.node:
        if node.op_type == "LpNormalization" and node.domain in ("", "ai.onnx"):
            new, consts = _lp_normalization(node)
            nodes += new
            inits += consts
            continue
        if node.domain != ML:
            nodes.append(node)
            continue
        label = f"{node.op_type} '{node.name or node.output[0]}'"
        if node.op_type == "Scaler":
            new, consts = _scaler(node)
        elif node.op_type == "LinearClassifier":
            _unused_label(node, used, label)
            new, consts = _linear(node, label)
        elif node.op_type == "TreeEnsembleClassifier":
            _unused_label(node, used, label)
            new, consts = _trees(node, label)
        else:
            raise TensorGraphError(f"{label}: no tensor rewrite for {node.op_type}")
        nodes += new
        inits += consts
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    del out.opset_import[:]
    out.opset_import.extend([i for i in model.opset_import if i.domain != ML])
    onnx.checker.check_model(out)
    return out


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _unused_label(node: onnx.NodeProto, used: set[str], label: str) -> None:
    # The rewrite computes the probabilities only: a graph that reads the label is refused.
    if node.output[0] and node.output[0] in used:
        raise TensorGraphError(f"{label}: its label output {node.output[0]!r} is read")


def _const(name: str, value: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(value), name)


def _scaler(node: onnx.NodeProto) -> tuple[list[onnx.NodeProto], list[TensorProto]]:
    a = _attrs(node)
    p = node.output[0] + "__"
    offset = np.asarray(a.get("offset", [0.0]), np.float32)
    scale = np.asarray(a.get("scale", [1.0]), np.float32)
    nodes = [
        helper.make_node("Sub", [node.input[0], p + "offset"], [p + "centred"]),
        helper.make_node("Mul", [p + "centred", p + "scale"], [node.output[0]]),
    ]
    return nodes, [_const(p + "offset", offset), _const(p + "scale", scale)]


def _lp_normalization(node: onnx.NodeProto) -> tuple[list[onnx.NodeProto], list[TensorProto]]:
    """``x / sum(|x|)`` along the axis (p = 1), in operators every provider has; whether
    ONNX Runtime's CUDA provider implements LpNormalization was not checked here."""
    a = _attrs(node)
    if a.get("p", 2) != 1:
        raise TensorGraphError(f"LpNormalization '{node.output[0]}': p = {a.get('p', 2)} (1 only)")
    p = node.output[0] + "__"
    nodes = [
        helper.make_node("Abs", [node.input[0]], [p + "abs"]),
        helper.make_node("ReduceSum", [p + "abs", p + "axis"], [p + "norm"], keepdims=1),
        helper.make_node("Div", [node.input[0], p + "norm"], [node.output[0]]),
    ]
    return nodes, [_const(p + "axis", np.array([a.get("axis", -1)], np.int64))]


def _linear(node: onnx.NodeProto, label: str) -> tuple[list[onnx.NodeProto], list[TensorProto]]:
    a = _attrs(node)
    classes = a.get("classlabels_ints") or a.get("classlabels_strings")
    k = len(classes)  # type: ignore[arg-type]
    transform = _text(a.get("post_transform", b"NONE"))
    if k < 3 or transform != "SOFTMAX":
        raise TensorGraphError(f"{label}: {k} classes, post_transform {transform} (3+, SOFTMAX)")
    coef = np.asarray(a["coefficients"], np.float32).reshape(k, -1).T  # [F, K]
    bias = np.asarray(a.get("intercepts", [0.0] * k), np.float32)
    p = node.output[1] + "__"
    nodes = [
        helper.make_node("MatMul", [node.input[0], p + "coef"], [p + "dot"]),
        helper.make_node("Add", [p + "dot", p + "bias"], [p + "scores"]),
        helper.make_node("Softmax", [p + "scores"], [node.output[1]], axis=-1),
    ]
    return nodes, [_const(p + "coef", coef), _const(p + "bias", bias)]


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _trees(node: onnx.NodeProto, label: str) -> tuple[list[onnx.NodeProto], list[TensorProto]]:
    a = _attrs(node)
    classes = a.get("classlabels_int64s") or a.get("classlabels_strings")
    k = len(classes)  # type: ignore[arg-type]
    transform = _text(a.get("post_transform", b"NONE"))
    if k < 3:
        raise TensorGraphError(f"{label}: {k} classes; the rewrite handles 3 or more")
    if transform not in ("NONE", "SOFTMAX", "LOGISTIC"):
        raise TensorGraphError(f"{label}: post_transform {transform} is not supported")
    tree_ids = list(a["nodes_treeids"])  # type: ignore[arg-type]
    node_ids = list(a["nodes_nodeids"])  # type: ignore[arg-type]
    modes = [_text(m) for m in a["nodes_modes"]]  # type: ignore[union-attr]
    index = {(t, n): i for i, (t, n) in enumerate(zip(tree_ids, node_ids, strict=True))}
    true_ids, false_ids = a["nodes_truenodeids"], a["nodes_falsenodeids"]
    branch_modes = {m for m in modes if m != "LEAF"}
    if len(branch_modes) != 1 or next(iter(branch_modes)) not in _COMPARE:
        raise TensorGraphError(
            f"{label}: branch modes {sorted(branch_modes)}; one of "
            f"{sorted(_COMPARE)} for every node is supported"
        )
    internal = [i for i, m in enumerate(modes) if m != "LEAF"]
    leaves = [i for i, m in enumerate(modes) if m == "LEAF"]
    col = {i: c for c, i in enumerate(internal)}
    row = {i: r for r, i in enumerate(leaves)}
    paths = np.zeros((len(internal), len(leaves)), np.float32)
    turns = np.zeros(len(leaves), np.float32)
    children = {index[(t, true_ids[i])] for i, t in enumerate(tree_ids) if modes[i] != "LEAF"}
    children |= {index[(t, false_ids[i])] for i, t in enumerate(tree_ids) if modes[i] != "LEAF"}
    roots = [i for i in range(len(modes)) if i not in children]
    for root in roots:  # walk every tree, recording each leaf's turns
        stack = [(root, [])]
        while stack:
            i, path = stack.pop()
            if modes[i] == "LEAF":
                for j, went_true in path:
                    paths[col[j], row[i]] = 1.0 if went_true else -1.0
                turns[row[i]] = sum(1 for _, went_true in path if went_true)
                continue
            t = tree_ids[i]
            stack.append((index[(t, true_ids[i])], [*path, (i, True)]))
            stack.append((index[(t, false_ids[i])], [*path, (i, False)]))
    values = np.zeros((len(leaves), k), np.float32)
    for t, n, c, w in zip(
        a["class_treeids"],
        a["class_nodeids"],
        a["class_ids"],  # type: ignore[arg-type]
        a["class_weights"],
        strict=True,
    ):
        i = index[(t, n)]
        if modes[i] != "LEAF" or not 0 <= c < k:
            raise TensorGraphError(f"{label}: a class weight on node {n} of tree {t} (class {c})")
        values[row[i], c] += w
    base = np.asarray(a.get("base_values") or [0.0] * k, np.float32)
    features = np.asarray([a["nodes_featureids"][i] for i in internal], np.int64)  # type: ignore[index]
    thresholds = np.asarray([a["nodes_values"][i] for i in internal], np.float32)  # type: ignore[index]
    op, negate = _COMPARE[next(iter(branch_modes))]
    p = node.output[1] + "__"
    nodes = [
        helper.make_node("Gather", [node.input[0], p + "features"], [p + "x"], axis=1),
        helper.make_node(op, [p + "x", p + "thresholds"], [p + "cmp"]),
    ]
    cond = p + "cmp"
    if negate:
        nodes.append(helper.make_node("Not", [cond], [p + "cond"]))
        cond = p + "cond"
    nodes += [
        helper.make_node("Cast", [cond], [p + "t"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", [p + "t", p + "paths"], [p + "hits"]),
        helper.make_node("Equal", [p + "hits", p + "turns"], [p + "reached"]),
        helper.make_node("Cast", [p + "reached"], [p + "leaf"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", [p + "leaf", p + "values"], [p + "sum"]),
    ]
    out = node.output[1]
    final = {"NONE": None, "SOFTMAX": "Softmax", "LOGISTIC": "Sigmoid"}[transform]
    nodes.append(
        helper.make_node("Add", [p + "sum", p + "base"], [out if final is None else p + "scores"])
    )
    if final == "Softmax":
        nodes.append(helper.make_node("Softmax", [p + "scores"], [out], axis=-1))
    elif final == "Sigmoid":
        nodes.append(helper.make_node("Sigmoid", [p + "scores"], [out]))
    consts = [
        _const(p + "features", features),
        _const(p + "thresholds", thresholds),
        _const(p + "paths", paths),
        _const(p + "turns", turns),
        _const(p + "values", values),
        _const(p + "base", base),
    ]
    return nodes, consts
