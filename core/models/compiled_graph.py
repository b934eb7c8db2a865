"""Read the merged ensemble graph into the flat parameter array of :mod:`.compiled_kernels`.

The reader walks back from the graph's outputs through exactly the nodes ``merge`` in
``replay/export.py`` writes (the member prefixes ``lr__``, ``rf__``, ``xgb__``, ``lstm__`` and
the combination), checks every attribute it meets against the set it implements, and at the
end requires that every node of the graph was accounted for. Anything else (another op,
an attribute it does not implement, a layout it would have to guess about) raises
:class:`CompiledGraphError` naming the node and the problem.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from . import compiled_kernels as k
from .bundle import MEMBERS

ML = "ai.onnx.ml"
# Default-domain opsets whose semantics the reader implements: from 13 (axes as inputs of
# Squeeze/Unsqueeze/ReduceSum, Softmax over one axis) to 22 (the newest onnx 1.23 writes).
OPSETS = range(13, 23)
# ai.onnx.ml: TreeEnsembleClassifier 3 is current up to ml opset 4 (5 deprecates it).
ML_OPSETS = range(1, 5)
MODES = {
    "LEAF": k.LEAF,
    "BRANCH_LEQ": k.LEQ,
    "BRANCH_LT": k.LT,
    "BRANCH_GTE": k.GTE,
    "BRANCH_GT": k.GT,
    "BRANCH_EQ": k.EQ,
    "BRANCH_NEQ": k.NEQ,
}
TRANSFORMS = {
    "NONE": k.NONE,
    "LOGISTIC": k.LOGISTIC,
    "SOFTMAX": k.SOFTMAX,
    "SOFTMAX_ZERO": k.SOFTMAX_ZERO,
}
_MISSING = object()


class CompiledGraphError(ValueError):
    """The graph holds something the compiled evaluator does not implement."""


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:  # onnx is in the "train" extra, not in the serving install
        raise CompiledGraphError(
            "the compiled engine reads the graph with the onnx package, which is not installed"
        ) from exc
    return onnx


class _Graph:
    """Lookups over one graph with the bookkeeping of which nodes were read."""

    def __init__(self, model: Any, source: str) -> None:
        onnx = _onnx()
        self.onnx = onnx
        self.source = source
        self.nodes = list(model.graph.node)
        self.producer: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            for out in node.output:
                if out:
                    self.producer[out] = i
        self.inits = {t.name: t for t in model.graph.initializer}
        self.visited: set[int] = set()

    def label(self, i: int) -> str:
        node = self.nodes[i]
        name = node.name or (node.output[0] if node.output else "")
        return f"{self.source}: node #{i} {node.op_type} {name!r}"

    def fail(self, i: int | None, problem: str) -> CompiledGraphError:
        where = self.label(i) if i is not None else self.source
        return CompiledGraphError(f"{where}: {problem}")

    def node(self, tensor: str, op: str, domain: str = "") -> tuple[int, Any]:
        """The node producing ``tensor``, which must be ``op`` in ``domain``."""
        if tensor not in self.producer:
            raise CompiledGraphError(
                f"{self.source}: {tensor!r} is not produced by any node (expected {op} here)"
            )
        i = self.producer[tensor]
        node = self.nodes[i]
        domains = {domain} if domain else {"", "ai.onnx"}
        if node.op_type != op or node.domain not in domains:
            found = f"{node.domain}:{node.op_type}" if node.domain else node.op_type
            raise self.fail(i, f"{found} is not supported where {tensor!r} is read (expected {op})")
        self.visited.add(i)
        return i, node

    def attrs(self, i: int, allowed: dict[str, Any]) -> dict[str, Any]:
        """The node's attributes: each must be in ``allowed`` (name -> default; a default
        of ``_MISSING`` means required)."""
        helper = self.onnx.helper
        got: dict[str, Any] = {}
        for a in self.nodes[i].attribute:
            if a.name not in allowed:
                raise self.fail(i, f"attribute {a.name!r} is not supported")
            value = helper.get_attribute_value(a)
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, list) and value and isinstance(value[0], bytes):
                value = [v.decode() for v in value]
            got[a.name] = value
        for name, default in allowed.items():
            if name not in got:
                if default is _MISSING:
                    raise self.fail(i, f"required attribute {name!r} is missing")
                got[name] = default
        return got

    def const(self, i: int, tensor: str, what: str) -> np.ndarray:
        """A constant input of node ``i``: an initializer or a ``Constant`` node's value."""
        if tensor in self.inits:
            return self.onnx.numpy_helper.to_array(self.inits[tensor])
        if tensor in self.producer:
            j = self.producer[tensor]
            node = self.nodes[j]
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = self.attrs(j, {"value": _MISSING})["value"]
                self.visited.add(j)
                return self.onnx.numpy_helper.to_array(value)
        raise self.fail(i, f"input {tensor!r} ({what}) must be a constant")

    def inputs(self, i: int, count: int) -> list[str]:
        """The node's inputs, exactly ``count`` of them (trailing empty names dropped)."""
        names = list(self.nodes[i].input)
        while names and not names[-1]:
            names.pop()
        if len(names) != count:
            raise self.fail(i, f"expected {count} inputs, found {len(names)}")
        return names


def _axes(g: _Graph, i: int, tensor: str, rank: int, expected: set[int], what: str) -> None:
    axes = {int(a) % rank for a in np.atleast_1d(g.const(i, tensor, what))}
    if axes != expected or np.atleast_1d(g.const(i, tensor, what)).size != len(expected):
        raise g.fail(i, f"{what} {sorted(axes)} are not supported (expected {sorted(expected)})")


def _vector(g: _Graph, i: int, tensor: str, size: int, what: str) -> np.ndarray:
    """A constant broadcasting along the last axis only: ``size`` values (or one)."""
    value = np.asarray(g.const(i, tensor, what), dtype=np.float32)
    if value.size == 1:
        return np.full(size, value.reshape(()), dtype=np.float32)
    if value.shape[-1] != size or value.size != size:
        raise g.fail(i, f"{what} of shape {list(value.shape)} does not broadcast as [{size}]")
    return value.reshape(size)


def _scalar(g: _Graph, i: int, tensor: str, what: str) -> float:
    value = np.asarray(g.const(i, tensor, what))
    if value.size != 1:
        raise g.fail(i, f"{what} must be a scalar, has shape {list(value.shape)}")
    return float(value.reshape(()))


def _transform(g: _Graph, i: int, name: str) -> int:
    if name not in TRANSFORMS:
        raise g.fail(i, f"post_transform {name!r} is not supported ({', '.join(TRANSFORMS)})")
    return TRANSFORMS[name]


def _lr(g: _Graph, prob: str, n_f: int, n_c: int) -> dict[str, Any]:
    i, node = g.node(prob, "LinearClassifier", ML)
    if list(node.output).index(prob) != 1:
        raise g.fail(i, f"{prob!r} is not the probability output")
    a = g.attrs(
        i,
        {
            "coefficients": _MISSING,
            "intercepts": [],
            "classlabels_ints": [],
            "classlabels_strings": [],
            "multi_class": 0,
            "post_transform": "NONE",
        },
    )
    labels = len(a["classlabels_ints"]) or len(a["classlabels_strings"])
    if len(a["intercepts"]) != n_c or labels != n_c or len(a["coefficients"]) != n_c * n_f:
        raise g.fail(
            i,
            f"{len(a['intercepts'])} intercepts, {labels} labels and "
            f"{len(a['coefficients'])} coefficients do not make {n_c} classes over {n_f} "
            "features (the binary form is not supported)",
        )
    if a["multi_class"] not in (0, 1):
        raise g.fail(i, f"multi_class {a['multi_class']} is not supported")
    (source,) = g.inputs(i, 1)
    j, _ = g.node(source, "Scaler", ML)
    s = g.attrs(j, {"offset": [], "scale": []})
    if g.inputs(j, 1) != ["features"]:
        raise g.fail(j, "must read the graph input 'features'")
    offset = np.asarray(s["offset"] or [0.0], np.float32)
    scale = np.asarray(s["scale"] or [1.0], np.float32)
    for name, v in (("offset", offset), ("scale", scale)):
        if v.size not in (1, n_f):
            raise g.fail(j, f"{name} has {v.size} values for {n_f} features")
    return {
        "offset": np.broadcast_to(offset, (n_f,)),
        "scale": np.broadcast_to(scale, (n_f,)),
        "coef": np.asarray(a["coefficients"], np.float32),
        "intercept": np.asarray(a["intercepts"], np.float32),
        "post": _transform(g, i, a["post_transform"]),
    }


_TREE_ATTRS = {
    "base_values": [],
    "class_ids": _MISSING,
    "class_nodeids": _MISSING,
    "class_treeids": _MISSING,
    "class_weights": _MISSING,
    "classlabels_int64s": [],
    "classlabels_strings": [],
    "nodes_falsenodeids": _MISSING,
    "nodes_featureids": _MISSING,
    "nodes_hitrates": [],  # a hint for the evaluation order only; no effect on the result
    "nodes_missing_value_tracks_true": [],
    "nodes_modes": _MISSING,
    "nodes_nodeids": _MISSING,
    "nodes_treeids": _MISSING,
    "nodes_truenodeids": _MISSING,
    "nodes_values": _MISSING,
    "post_transform": "NONE",
}


def _trees(g: _Graph, prob: str, n_f: int, n_c: int) -> dict[str, Any]:
    """One TreeEnsembleClassifier, flattened: node arrays, children as global indices."""
    i, node = g.node(prob, "TreeEnsembleClassifier", ML)
    if list(node.output).index(prob) != 1:
        raise g.fail(i, f"{prob!r} is not the probability output")
    if g.inputs(i, 1) != ["features"]:
        raise g.fail(i, "must read the graph input 'features'")
    a = g.attrs(i, _TREE_ATTRS)
    labels = len(a["classlabels_int64s"]) or len(a["classlabels_strings"])
    if labels != n_c:
        raise g.fail(
            i, f"{labels} class labels, the graph needs {n_c} (the binary form is not supported)"
        )
    n = len(a["nodes_nodeids"])
    for name in ("nodes_falsenodeids", "nodes_featureids", "nodes_modes", "nodes_treeids"):
        if len(a[name]) != n:
            raise g.fail(i, f"{name} has {len(a[name])} entries for {n} nodes")
    for name in ("nodes_truenodeids", "nodes_values"):
        if len(a[name]) != n:
            raise g.fail(i, f"{name} has {len(a[name])} entries for {n} nodes")
    missing = a["nodes_missing_value_tracks_true"] or [0] * n
    if len(missing) != n:
        raise g.fail(i, f"nodes_missing_value_tracks_true has {len(missing)} entries, {n} nodes")
    w = len(a["class_ids"])
    if not (len(a["class_nodeids"]) == len(a["class_treeids"]) == len(a["class_weights"]) == w):
        raise g.fail(i, "class_ids, class_nodeids, class_treeids, class_weights differ in length")
    base = a["base_values"]
    if len(base) not in (0, n_c):
        raise g.fail(i, f"{len(base)} base_values for {n_c} classes is not supported")

    trees, ids = a["nodes_treeids"], a["nodes_nodeids"]
    index: dict[tuple[int, int], int] = {}
    roots: list[int] = []
    for j in range(n):
        key = (int(trees[j]), int(ids[j]))
        if key in index:
            raise g.fail(i, f"node {key[1]} of tree {key[0]} appears twice")
        index[key] = j
        if j == 0 or trees[j] != trees[j - 1]:
            if any(trees[r] == trees[j] for r in roots):
                raise g.fail(i, f"tree {trees[j]}'s nodes are not listed together")
            if ids[j] != 0:
                raise g.fail(i, f"tree {trees[j]} is not listed from its root (node 0) first")
            roots.append(j)
    modes = np.empty(n, np.int32)
    true_child = np.zeros(n, np.int32)
    false_child = np.zeros(n, np.int32)
    for j in range(n):
        mode = a["nodes_modes"][j]
        if mode not in MODES:
            raise g.fail(i, f"node mode {mode!r} is not supported")
        modes[j] = MODES[mode]
        if modes[j] == k.LEAF:
            continue
        feature = int(a["nodes_featureids"][j])
        if not 0 <= feature < n_f:
            raise g.fail(i, f"node {ids[j]} of tree {trees[j]} reads feature {feature} of {n_f}")
        for name, out in (("nodes_truenodeids", true_child), ("nodes_falsenodeids", false_child)):
            child = (int(trees[j]), int(a[name][j]))
            if child not in index or index[child] == j:
                raise g.fail(i, f"{name} of node {ids[j]} in tree {trees[j]} is not in the tree")
            out[j] = index[child]
    _check_acyclic(g, i, roots, modes, true_child, false_child, trees)

    # Leaf weights in attribute order per leaf (the order ONNX Runtime adds them in).
    per_node: list[list[int]] = [[] for _ in range(n)]
    for q in range(w):
        key = (int(a["class_treeids"][q]), int(a["class_nodeids"][q]))
        if key not in index:
            raise g.fail(i, f"class weight {q} names node {key[1]} of tree {key[0]}: no such node")
        if modes[index[key]] != k.LEAF:
            raise g.fail(i, f"class weight {q} is on branch node {key[1]} of tree {key[0]}")
        if not 0 <= int(a["class_ids"][q]) < n_c:
            raise g.fail(i, f"class weight {q} is for class {a['class_ids'][q]} of {n_c}")
        per_node[index[key]].append(q)
    order = [q for qs in per_node for q in qs]
    ends = np.cumsum([len(qs) for qs in per_node]).astype(np.int32)
    return {
        "roots": np.asarray(roots, np.int32),
        "feature": np.asarray(a["nodes_featureids"], np.int32),
        "mode": modes,
        "true": true_child,
        "false": false_child,
        "missing": np.asarray(missing, np.int32),
        "w_start": ends - np.asarray([len(qs) for qs in per_node], np.int32),
        "w_end": ends,
        "w_class": np.asarray(a["class_ids"], np.int32)[order],
        "w_value": np.asarray(a["class_weights"], np.float32)[order],
        "threshold": np.asarray(a["nodes_values"], np.float32),
        "base": np.asarray(base or [0.0] * n_c, np.float32),
        "post": _transform(g, i, a["post_transform"]),
    }


def _check_acyclic(g, i, roots, modes, true_child, false_child, trees) -> None:
    """Every tree is a tree: no path from a root is longer than its node count."""
    sizes: dict[int, int] = {}
    for t in trees:
        sizes[int(t)] = sizes.get(int(t), 0) + 1
    for root in roots:
        limit = sizes[int(trees[root])]
        stack = [(root, 0)]
        while stack:
            j, depth = stack.pop()
            if depth > limit:
                raise g.fail(i, f"tree {trees[root]} has a cycle")
            if modes[j] != k.LEAF:
                stack.append((int(true_child[j]), depth + 1))
                stack.append((int(false_child[j]), depth + 1))


_LSTM_ATTRS = {
    "hidden_size": _MISSING,
    "direction": "forward",
    "activations": ["Sigmoid", "Tanh", "Tanh"],
    "input_forget": 0,
    "layout": 0,
}


def _lstm(g: _Graph, prob: str, n_f: int, n_t: int, n_c: int) -> dict[str, Any]:
    """Transpose, Sub, Mul, Clip, LSTM (last hidden state), Squeeze, Gemm, Softmax."""
    i, _ = g.node(prob, "Softmax")
    if g.attrs(i, {"axis": -1})["axis"] not in (-1, 1):
        raise g.fail(i, "softmax over an axis other than the classes is not supported")
    (logits,) = g.inputs(i, 1)
    i, _ = g.node(logits, "Gemm")
    a = g.attrs(i, {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0})
    if a["alpha"] != 1.0 or a["beta"] != 1.0 or a["transA"] != 0:
        raise g.fail(i, f"alpha {a['alpha']}, beta {a['beta']}, transA {a['transA']}: only 1, 1, 0")
    hidden, w_name, b_name = g.inputs(i, 3)
    head_w = np.asarray(g.const(i, w_name, "head weights"), np.float32)
    head_w = head_w if a["transB"] else head_w.T
    head_b = _vector(g, i, b_name, n_c, "head bias")
    i, _ = g.node(hidden, "Squeeze")
    h_last, axes = g.inputs(i, 2)
    _axes(g, i, axes, 3, {0}, "squeeze axes")
    i, lstm = g.node(h_last, "LSTM")
    if list(lstm.output).index(h_last) != 1:
        raise g.fail(i, "only the last hidden state (Y_h) may be read")
    a = g.attrs(i, _LSTM_ATTRS)
    if a["direction"] != "forward" or a["input_forget"] != 0 or a["layout"] != 0:
        raise g.fail(i, "only a forward LSTM, input_forget 0, layout 0 is supported")
    if [s.lower() for s in a["activations"]] != ["sigmoid", "tanh", "tanh"]:
        raise g.fail(i, f"activations {a['activations']} are not supported")
    names = list(lstm.input) + [""] * (8 - len(lstm.input))
    if any(names[4:]):
        raise g.fail(i, "sequence_lens, initial_h, initial_c and peepholes are not supported")
    n_h = int(a["hidden_size"])
    big_w = np.asarray(g.const(i, names[1], "W"), np.float32)
    big_r = np.asarray(g.const(i, names[2], "R"), np.float32)
    bias = (
        np.asarray(g.const(i, names[3], "B"), np.float32)
        if names[3]
        else np.zeros((1, 8 * n_h), np.float32)
    )
    if big_w.shape != (1, 4 * n_h, n_f) or big_r.shape != (1, 4 * n_h, n_h):
        raise g.fail(i, f"W {list(big_w.shape)} / R {list(big_r.shape)} do not fit {n_h} hidden")
    if bias.shape != (1, 8 * n_h) or head_w.shape != (n_c, n_h):
        raise g.fail(i, f"B {list(bias.shape)} or head weights {list(head_w.shape)} do not fit")
    i, _ = g.node(names[0], "Clip")
    scaled, lo, hi = g.inputs(i, 3)
    clip = np.array([_scalar(g, i, lo, "min"), _scalar(g, i, hi, "max")], np.float32)
    i, _ = g.node(scaled, "Mul")
    centred, inv_std = g.inputs(i, 2)
    inv_std = _vector(g, i, inv_std, n_f, "scale")
    i, _ = g.node(centred, "Sub")
    tnf, mean = g.inputs(i, 2)
    mean = _vector(g, i, mean, n_f, "mean")
    i, _ = g.node(tnf, "Transpose")
    if g.attrs(i, {"perm": _MISSING})["perm"] != [1, 0, 2] or g.inputs(i, 1) != ["window"]:
        raise g.fail(i, "expected the graph input 'window' transposed with perm [1, 0, 2]")
    return {
        "mean": mean,
        "inv_std": inv_std,
        "clip": clip,
        "W": np.ascontiguousarray(big_w[0].T),  # [F, 4H]: see the kernel
        "R": np.ascontiguousarray(big_r[0].T),  # [H, 4H]
        "B": bias[0, : 4 * n_h] + bias[0, 4 * n_h :],  # Wb + Rb, float32
        "head_w": np.ascontiguousarray(head_w).reshape(-1),
        "head_b": head_b,
        "hidden": n_h,
    }


def _io(g: _Graph, model: Any) -> tuple[int, int]:
    """The graph's inputs and outputs: names, float32, and the sizes F and T."""
    dims: dict[str, list[int | str]] = {}
    for v in model.graph.input:
        t = v.type.tensor_type
        if t.elem_type != g.onnx.TensorProto.FLOAT:
            raise g.fail(None, f"input {v.name!r} is not float32")
        dims[v.name] = [
            d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim
        ]
    if set(dims) != {"features", "window", "weights"}:
        raise g.fail(None, f"inputs {sorted(dims)} are not features, window, weights")
    outputs = [o.name for o in model.graph.output]
    if outputs != ["members", "ensemble", "confidence"]:
        raise g.fail(None, f"outputs {outputs} are not members, ensemble, confidence")
    f, w = dims["features"], dims["window"]
    if len(f) != 2 or len(w) != 3 or not isinstance(f[1], int) or not isinstance(w[1], int):
        raise g.fail(None, f"input shapes features {f}, window {w} are not [N, F], [N, T, F]")
    if w[2] != f[1] or dims["weights"][1:] != [len(MEMBERS)]:
        raise g.fail(None, f"input shapes {dims} disagree")
    return int(f[1]), int(w[1])


def read_graph(model: Any, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every parameter of the merged graph ``model`` (an onnx ModelProto), by member."""
    g = _Graph(model, source)
    for op in model.opset_import:
        versions = ML_OPSETS if op.domain == ML else OPSETS if op.domain in ("", "ai.onnx") else ()
        if op.version not in versions:
            raise g.fail(None, f"opset {op.domain or 'ai.onnx'} {op.version} is not supported")
    n_f, n_t = _io(g, model)
    n_m, n_c = len(MEMBERS), 3

    i, _ = g.node("confidence", "ReduceSum")
    if g.attrs(i, {"keepdims": 1, "noop_with_empty_axes": 0})["keepdims"] != 0:
        raise g.fail(i, "keepdims must be 0")
    weighted, axes = g.inputs(i, 2)
    _axes(g, i, axes, 3, {1, 2}, "reduced axes")
    i, _ = g.node(weighted, "MatMul")
    w_row, overlap = g.inputs(i, 2)
    i, _ = g.node(overlap, "Min")
    if sorted(g.inputs(i, 2)) != sorted(["members", _producer_output(g, "ensemble")]):
        raise g.fail(i, "must take the minimum of 'members' and the ensemble row")
    i, _ = g.node("ensemble", "Reshape")
    ens_row, shape = g.inputs(i, 2)
    _shape(g, i, shape, [n_c])
    i, _ = g.node(ens_row, "MatMul")
    if g.inputs(i, 2) != [w_row, "members"]:
        raise g.fail(i, "must multiply the weight row by 'members'")
    i, _ = g.node(w_row, "Unsqueeze")
    w_norm, axes = g.inputs(i, 2)
    _axes(g, i, axes, 3, {1}, "unsqueeze axes")
    i, _ = g.node(w_norm, "LpNormalization")
    _l1(g, i, 2, 1)
    if g.inputs(i, 1) != ["weights"]:
        raise g.fail(i, "must normalise the graph input 'weights'")

    i, _ = g.node("members", "LpNormalization")
    _l1(g, i, 3, 2)
    (raw,) = g.inputs(i, 1)
    i, _ = g.node(raw, "Reshape")
    calibrated, shape = g.inputs(i, 2)
    _shape(g, i, shape, [n_m, n_c])
    inv_t = None
    if g.nodes[g.producer.get(calibrated, 0)].op_type == "Pow":
        i, _ = g.node(calibrated, "Pow")
        calibrated, exponent = g.inputs(i, 2)
        inv_t = _vector(g, i, exponent, n_m * n_c, "exponents")
    i, _ = g.node(calibrated, "Clip")
    flat, lo, hi = g.inputs(i, 3)
    clip = np.array([_scalar(g, i, lo, "min"), _scalar(g, i, hi, "max")], np.float32)
    i, _ = g.node(flat, "Concat")
    if g.attrs(i, {"axis": _MISSING})["axis"] not in (1, -1):
        raise g.fail(i, "must concatenate along axis 1")
    probs = g.inputs(i, n_m)
    for name, prob in zip(MEMBERS, probs, strict=True):
        if not prob.startswith(f"{name}__"):
            raise g.fail(i, f"input {prob!r} is not member {name!r}'s (members in order {MEMBERS})")

    readers: list[Callable[[], dict[str, Any]]] = [
        lambda: _lr(g, probs[0], n_f, n_c),
        lambda: _trees(g, probs[1], n_f, n_c),
        lambda: _trees(g, probs[2], n_f, n_c),
        lambda: _lstm(g, probs[3], n_f, n_t, n_c),
    ]
    members: dict[str, Any] = {}
    for name, reader in zip(MEMBERS, readers, strict=True):
        before = set(g.visited)
        members[name] = reader()
        for j in g.visited - before:
            outs = [o for o in g.nodes[j].output if o]
            if g.nodes[j].op_type != "Constant" and not all(
                o.startswith(f"{name}__") for o in outs
            ):
                raise g.fail(j, f"is read by member {name!r} but its outputs are not {name}__")
    unread = sorted(set(range(len(g.nodes))) - g.visited)
    if unread:
        raise g.fail(unread[0], "is not part of the ensemble the compiled evaluator implements")
    combination = {
        "n_features": n_f,
        "window": n_t,
        "members": n_m,
        "classes": n_c,
        "clip": clip,
        "inv_t": inv_t,
    }
    return members, combination


def _producer_output(g: _Graph, output: str) -> str:
    """The tensor the graph output ``output`` is reshaped from (the ensemble row)."""
    if output not in g.producer:
        raise CompiledGraphError(f"{g.source}: output {output!r} is not produced by any node")
    node = g.nodes[g.producer[output]]
    return node.input[0] if node.input else ""


def _shape(g: _Graph, i: int, tensor: str, tail: list[int]) -> None:
    g.attrs(i, {"allowzero": 0})
    shape = [int(v) for v in np.atleast_1d(g.const(i, tensor, "shape"))]
    if shape != [-1, *tail]:
        raise g.fail(i, f"reshape to {shape} is not supported (expected {[-1, *tail]})")


def _l1(g: _Graph, i: int, rank: int, axis: int) -> None:
    a = g.attrs(i, {"axis": -1, "p": 2})
    if a["p"] != 1 or a["axis"] % rank != axis:
        raise g.fail(i, f"p={a['p']} axis={a['axis']} is not supported (p=1 over axis {axis})")


def pack(members: dict[str, Any], combination: dict[str, Any]) -> np.ndarray:
    """The kernels' ``params`` array: an int32 header and segments (see compiled_kernels)."""
    lr, rf, xgb, lstm = (members[name] for name in MEMBERS)
    header = np.zeros(k.HEADER, np.int32)
    ints: list[np.ndarray] = [header]
    floats: list[np.ndarray] = []
    int_size = [k.HEADER]
    float_at: dict[int, np.ndarray] = {}

    def add_int(slot: int, values: np.ndarray) -> None:
        header[slot] = int_size[0]
        ints.append(np.asarray(values, np.int32))
        int_size[0] += len(ints[-1])

    def add_float(slot: int, values: np.ndarray) -> None:
        float_at[slot] = np.asarray(values, np.float32).reshape(-1)

    header[k.F], header[k.T] = combination["n_features"], combination["window"]
    header[k.H], header[k.C] = lstm["hidden"], combination["classes"]
    header[k.M] = combination["members"]
    header[k.LR_POST] = lr["post"]
    header[k.HAS_POW] = combination["inv_t"] is not None
    n_rf = len(rf["mode"])
    header[k.TREE_POST], header[k.TREE_POST + 1] = rf["post"], xgb["post"]
    header[k.ROOT_COUNT], header[k.ROOT_COUNT + 1] = len(rf["roots"]), len(xgb["roots"])
    header[k.N_NODES] = n_rf + len(xgb["mode"])
    n_rf_w = len(rf["w_value"])

    def both(key: str, shift: int = 0) -> np.ndarray:
        return np.concatenate([rf[key], xgb[key] + shift])

    add_int(k.ROOTS, both("roots", n_rf))
    node_ints = [
        both("feature"),
        both("mode"),
        both("true", n_rf),
        both("false", n_rf),
        both("missing"),
        both("w_start", n_rf_w),
        both("w_end", n_rf_w),
    ]
    add_int(k.NODE_INTS, np.concatenate(node_ints))
    add_int(k.W_CLASS, both("w_class"))
    add_float(k.LR_OFFSET, lr["offset"])
    add_float(k.LR_SCALE, lr["scale"])
    add_float(k.LR_COEF, lr["coef"])
    add_float(k.LR_INTERCEPT, lr["intercept"])
    add_float(k.THRESHOLD, both("threshold"))
    add_float(k.W_VALUE, both("w_value"))
    add_float(k.BASE, both("base"))
    add_float(k.LSTM_MEAN, lstm["mean"])
    add_float(k.LSTM_INV_STD, lstm["inv_std"])
    add_float(k.LSTM_CLIP, lstm["clip"])
    add_float(k.LSTM_W, lstm["W"])
    add_float(k.LSTM_R, lstm["R"])
    add_float(k.LSTM_B, lstm["B"])
    add_float(k.HEAD_W, lstm["head_w"])
    add_float(k.HEAD_B, lstm["head_b"])
    add_float(k.CLIP, combination["clip"])
    inv_t = combination["inv_t"]
    add_float(k.INV_T, inv_t if inv_t is not None else np.ones(header[k.M] * header[k.C]))
    at = int_size[0]
    for slot, values in float_at.items():
        header[slot] = at
        floats.append(values)
        at += len(values)
    return np.concatenate([np.concatenate(ints).view(np.float32), *floats])
