"""Numba kernels of the compiled ensemble evaluator (see :mod:`.compiled`).

Every parameter of a graph lives in one float32 array, ``params``, whose first ``HEADER``
slots are int32 values (read through ``params.view(np.int32)``): sizes, transform codes and
the offsets of each segment. One array instead of thirty because numba's dispatcher costs
about 0.1 us per array argument, which at batch 1 would be most of the evaluation.

Arithmetic mirrors ONNX Runtime where rounding could differ visibly: inputs are centred and
scaled in float32 exactly as the graph's Scaler / Sub / Mul nodes do (a feature whose mean
is large against its spread loses different digits otherwise), tree thresholds are compared
in float32 and leaf weights summed in float32 in tree order. Dot products are float32 with
four partial sums, as close to the exact value as ONNX Runtime's float32 GEMMs are.
"""

import math

import numba as nb
import numpy as np

# Node modes (ONNX TreeEnsembleClassifier ``nodes_modes``).
LEAF, LEQ, LT, GTE, GT, EQ, NEQ = 0, 1, 2, 3, 4, 5, 6
# Post transforms (``post_transform`` of TreeEnsembleClassifier and LinearClassifier).
NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO = 0, 1, 2, 3

# Header slots (int32). Sizes and codes:
F, T, H, C, M = 0, 1, 2, 3, 4
LR_POST, HAS_POW = 5, 6
TREE_POST = 7  # 7, 8: one per tree ensemble
ROOT_COUNT = 9  # 9, 10
N_NODES = 11
# Offsets into params (int segments):
ROOTS, NODE_INTS, W_CLASS = 12, 13, 14
# Offsets into params (float segments):
LR_OFFSET, LR_SCALE, LR_COEF, LR_INTERCEPT = 15, 16, 17, 18
THRESHOLD, W_VALUE, BASE = 19, 20, 21
LSTM_MEAN, LSTM_INV_STD, LSTM_CLIP, LSTM_W, LSTM_R, LSTM_B = 22, 23, 24, 25, 26, 27
HEAD_W, HEAD_B, CLIP, INV_T = 28, 29, 30, 31
HEADER = 32
N_NODE_INTS = 7  # feature, mode, true child, false child, missing->true, weights start, end


@nb.njit(cache=True, nogil=True, inline="always")
def _transform(scores, n, post):
    """ONNX Runtime's ``write_scores`` for a multi-class output, in float32."""
    if post == LOGISTIC:
        for k in range(n):
            v = scores[k]
            p = np.float32(1.0) / (np.float32(1.0) + np.exp(-abs(v)))
            scores[k] = np.float32(1.0) - p if v < 0 else p
    elif post == SOFTMAX or post == SOFTMAX_ZERO:  # noqa: SIM109 (numba: no tuple `in`)
        top = scores[0]
        for k in range(1, n):
            top = max(top, scores[k])
        total = np.float32(0.0)
        for k in range(n):
            v = scores[k]
            # SOFTMAX_ZERO leaves (near) zero scores out of the sum: ONNX Runtime's rule.
            if post == SOFTMAX_ZERO and -1e-7 <= v <= 1e-7:
                scores[k] = v * np.exp(-top)
            else:
                e = np.exp(v - top)
                scores[k] = e
                total += e
        for k in range(n):
            scores[k] = scores[k] / total


@nb.njit(cache=True, nogil=True, inline="always")
def _trees(x, params, ip, ensemble, root_start, out, base):
    """One TreeEnsembleClassifier: summed leaf weights plus base values, then its transform."""
    n_classes = ip[C]
    n = ip[N_NODES]
    nodes = ip[NODE_INTS]
    feature, mode, true_child = nodes, nodes + n, nodes + 2 * n
    false_child, missing_true = nodes + 3 * n, nodes + 4 * n
    w_start, w_end = nodes + 5 * n, nodes + 6 * n
    threshold, w_class, w_value = ip[THRESHOLD], ip[W_CLASS], ip[W_VALUE]
    for k in range(n_classes):
        out[k] = params[ip[BASE] + base * n_classes + k]
    for r in range(root_start, root_start + ip[ROOT_COUNT + ensemble]):
        i = ip[ip[ROOTS] + r]
        m = ip[mode + i]
        while m != LEAF:
            v = x[ip[feature + i]]
            t = params[threshold + i]
            if m == LEQ:
                go = v <= t
            elif m == LT:
                go = v < t
            elif m == GTE:
                go = v >= t
            elif m == GT:
                go = v > t
            elif m == EQ:
                go = v == t
            else:
                go = v != t
            if not go and ip[missing_true + i] != 0 and np.isnan(v):
                go = True
            i = ip[true_child + i] if go else ip[false_child + i]
            m = ip[mode + i]
        for j in range(ip[w_start + i], ip[w_end + i]):
            k = ip[w_class + j]
            out[k] += params[w_value + j]
    _transform(out, n_classes, ip[TREE_POST + ensemble])


@nb.njit(cache=True, nogil=True, inline="always")
def _dot(a, b, n):
    """float32 dot product with four accumulators: the sum is not one long dependency chain
    (which costs about 4 cycles per term) and needs no fast-math reassociation."""
    s0 = s1 = s2 = s3 = np.float32(0.0)
    j = 0
    while j + 4 <= n:
        s0 += a[j] * b[j]
        s1 += a[j + 1] * b[j + 1]
        s2 += a[j + 2] * b[j + 2]
        s3 += a[j + 3] * b[j + 3]
        j += 4
    while j < n:
        s0 += a[j] * b[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


# exp(x) for the LSTM's gates: libm's exp is not inlined and costs 10-15 ns a call here, 320
# calls per window. Cody-Waite reduction to |r| <= ln2/2 and the Taylor series to r^11
# (truncation below 1e-14 relative); the argument is clamped to [-40, 40], where a sigmoid
# is 0 or 1 within 5e-18, so 2^k comes from a table.
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_LOG2E = 1.4426950408889634
_POW2 = 2.0 ** np.arange(-64, 65, dtype=np.float64)
_E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11 = (1.0 / math.factorial(n) for n in range(2, 12))


@nb.njit(cache=True, nogil=True, inline="always")
def _exp(x):
    x = min(max(x, -40.0), 40.0)
    k = math.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = _E11
    p = p * r + _E10
    p = p * r + _E9
    p = p * r + _E8
    p = p * r + _E7
    p = p * r + _E6
    p = p * r + _E5
    p = p * r + _E4
    p = p * r + _E3
    p = p * r + _E2
    p = p * r + 1.0
    p = p * r + 1.0
    return p * _POW2[int(k) + 64]


@nb.njit(cache=True, nogil=True)
def _row(x, window, w, params, members, ensemble, confidence, n, scratch):
    """Evaluate one row into ``members[n]``, ``ensemble[n]``, ``confidence[n]``."""
    ip = params.view(np.int32)
    n_f, n_t, n_h = np.int64(ip[F]), np.int64(ip[T]), np.int64(ip[H])
    n_c, n_m = np.int64(ip[C]), np.int64(ip[M])
    raw = scratch[: n_m * n_c]
    h = scratch[n_m * n_c : n_m * n_c + n_h]
    cell = scratch[n_m * n_c + n_h : n_m * n_c + 2 * n_h]
    gates = scratch[n_m * n_c + 2 * n_h : n_m * n_c + 6 * n_h]
    z = scratch[n_m * n_c + 6 * n_h : n_m * n_c + 6 * n_h + n_f]

    # Logistic regression: Scaler ((x - offset) * scale, float32) then LinearClassifier.
    # Weights are read through views indexed by loop counters: LLVM can then drop numba's
    # negative-index wraparound and vectorise the dot products (offset arithmetic cannot).
    off = params[ip[LR_OFFSET] : ip[LR_OFFSET] + n_f]
    scale = params[ip[LR_SCALE] : ip[LR_SCALE] + n_f]
    coef = params[ip[LR_COEF] : ip[LR_COEF] + n_c * n_f].reshape((n_c, n_f))
    icpt = params[ip[LR_INTERCEPT] : ip[LR_INTERCEPT] + n_c]
    for j in range(n_f):
        z[j] = (x[j] - off[j]) * scale[j]
    for c in range(n_c):
        raw[c] = _dot(coef[c], z, n_f) + icpt[c]
    _transform(raw[:n_c], n_c, ip[LR_POST])

    # The two tree ensembles (random forest, XGBoost).
    _trees(x, params, ip, 0, 0, raw[n_c : 2 * n_c], 0)
    _trees(x, params, ip, 1, ip[ROOT_COUNT], raw[2 * n_c : 3 * n_c], 1)

    # LSTM over the window: standardise and clip (float32), gates (i, o, f, c), last h.
    mean = params[ip[LSTM_MEAN] : ip[LSTM_MEAN] + n_f]
    inv_std = params[ip[LSTM_INV_STD] : ip[LSTM_INV_STD] + n_f]
    lo, hi = params[ip[LSTM_CLIP]], params[ip[LSTM_CLIP] + 1]
    g4 = 4 * n_h
    # W and R are stored transposed ([F, 4H], [H, 4H]) so the gate update is a run of
    # axpy loops over contiguous gates, which LLVM vectorises (a dot product per gate,
    # one long sum, would not be without fast-math).
    big_w = params[ip[LSTM_W] : ip[LSTM_W] + n_f * g4].reshape((n_f, g4))
    big_r = params[ip[LSTM_R] : ip[LSTM_R] + n_h * g4].reshape((n_h, g4))
    bias = params[ip[LSTM_B] : ip[LSTM_B] + g4]  # Wb + Rb
    for j in range(n_h):
        h[j] = 0.0
        cell[j] = 0.0
    for t in range(n_t):
        for g in range(g4):
            gates[g] = bias[g]
        for j in range(n_f):
            v = (window[t, j] - mean[j]) * inv_std[j]
            zj = min(max(v, lo), hi)
            row = big_w[j]
            for g in range(g4):
                gates[g] += row[g] * zj
        for j in range(n_h):
            hj = h[j]
            row = big_r[j]
            for g in range(g4):
                gates[g] += row[g] * hj
        # Gates i, o, f: sigmoid; the cell candidate: tanh(v) = 2 * sigmoid(2v) - 1.
        for g in range(3 * n_h):
            gates[g] = 1.0 / (1.0 + _exp(-np.float64(gates[g])))
        for g in range(3 * n_h, g4):
            gates[g] = 2.0 / (1.0 + _exp(-2.0 * np.float64(gates[g]))) - 1.0
        for j in range(n_h):
            c = gates[2 * n_h + j] * cell[j] + gates[j] * gates[3 * n_h + j]
            cell[j] = c
            h[j] = gates[n_h + j] * (2.0 / (1.0 + _exp(-2.0 * np.float64(c))) - 1.0)
    head_w = params[ip[HEAD_W] : ip[HEAD_W] + n_c * n_h].reshape((n_c, n_h))
    head_b = params[ip[HEAD_B] : ip[HEAD_B] + n_c]
    logits = raw[3 * n_c : 4 * n_c]
    for c in range(n_c):
        logits[c] = _dot(head_w[c], h, n_h) + head_b[c]
    _transform(logits, n_c, SOFTMAX)

    # Calibration: clip, optional power 1/T, L1 per member; weights L1; mixture; overlap.
    clip, inv_t = ip[CLIP], ip[INV_T]
    eps, one = params[clip], params[clip + 1]
    has_pow = ip[HAS_POW] != 0
    for m in range(n_m):
        total = np.float32(0.0)
        for k in range(n_c):
            v = min(max(raw[m * n_c + k], eps), one)
            if has_pow:
                v = v ** params[inv_t + m * n_c + k]
            raw[m * n_c + k] = v
            total += abs(v)
        for k in range(n_c):
            members[n, m, k] = raw[m * n_c + k] / total
    w_total = np.float32(0.0)
    for m in range(n_m):
        w_total += abs(w[m])
    for k in range(n_c):
        acc = 0.0
        for m in range(n_m):
            acc += (w[m] / w_total) * members[n, m, k]
        ensemble[n, k] = acc
    conf = 0.0
    for k in range(n_c):
        e = ensemble[n, k]
        acc = 0.0
        for m in range(n_m):
            acc += (w[m] / w_total) * min(members[n, m, k], e)
        conf += np.float32(acc)
    confidence[n] = conf


def _scratch_size(ip):
    return ip[M] * ip[C] + 6 * ip[H] + ip[F]


_scratch = nb.njit(cache=True, nogil=True, inline="always")(_scratch_size)

_ONE = [
    nb.void(
        nb.float32[::1],
        nb.float32[:, ::1],
        nb.float32[::1],
        nb.float32[::1],
        nb.float32[:, :, ::1],
        nb.float32[:, ::1],
        nb.float32[::1],
    )
]


# Batch 1 keeps the GIL: releasing it for microseconds hands it to another thread (the
# journal's writer) and the way back can wait for the interpreter's 5 ms switch interval.
@nb.njit(_ONE, cache=True)
def evaluate_one(row, window, weights, params, members, ensemble, confidence):
    """Batch 1: ``row`` [F], ``window`` [T, F], ``weights`` [M] into outputs of batch 1."""
    ip = params.view(np.int32)
    if (
        row.shape[0] != ip[F]
        or window.shape[0] != ip[T]
        or window.shape[1] != ip[F]
        or weights.shape[0] != ip[M]
    ):
        raise ValueError("compiled ensemble: input shapes differ from the graph's")
    if (
        members.shape[0] != 1
        or members.shape[1] != ip[M]
        or members.shape[2] != ip[C]
        or ensemble.shape[0] != 1
        or ensemble.shape[1] != ip[C]
        or confidence.shape[0] != 1
    ):
        raise ValueError("compiled ensemble: output shapes differ from the graph's")
    scratch = np.empty(_scratch(ip), dtype=np.float32)
    _row(row, window, weights, params, members, ensemble, confidence, 0, scratch)


_BATCH = [
    nb.void(
        nb.float32[:, ::1],
        nb.float32[:, :, ::1],
        nb.float32[:, ::1],
        nb.float32[::1],
        nb.float32[:, :, ::1],
        nb.float32[:, ::1],
        nb.float32[::1],
    )
]


@nb.njit(_BATCH, cache=True, nogil=True)
def evaluate_batch(features, windows, weights, params, members, ensemble, confidence):
    """Batch N: ``features`` [N, F], ``windows`` [N, T, F], ``weights`` [N, M]."""
    ip = params.view(np.int32)
    n = features.shape[0]
    if (
        features.shape[1] != ip[F]
        or windows.shape[0] != n
        or windows.shape[1] != ip[T]
        or windows.shape[2] != ip[F]
        or weights.shape[0] != n
        or weights.shape[1] != ip[M]
    ):
        raise ValueError("compiled ensemble: input shapes differ from the graph's")
    if (
        members.shape[0] != n
        or members.shape[1] != ip[M]
        or members.shape[2] != ip[C]
        or ensemble.shape[0] != n
        or ensemble.shape[1] != ip[C]
        or confidence.shape[0] != n
    ):
        raise ValueError("compiled ensemble: output shapes differ from the graph's")
    scratch = np.empty(_scratch(ip), dtype=np.float32)
    for i in range(n):
        _row(features[i], windows[i], weights[i], params, members, ensemble, confidence, i, scratch)
