"""The one incremental feature kernel, shared by live trading and replay.

Per instrument, all state is one float64 array (``state.new_state()``): a header of
scalars, the current feature row, and ring buffers. Each ``on_*`` function folds one event
into it and leaves the row for that event in ``state[FEAT:FEAT + N_FEATURES]``; :func:`run`
calls the very same functions over whole event arrays, so replay and live cannot drift
apart (no ``fastmath``: every IEEE operation happens in the same order).

Division follows IEEE rules (``error_model="numpy"``) rather than raising
``ZeroDivisionError`` mid-stream; every division that can see a zero is guarded with the
documented 0/0 value, so none does. The helpers are inlined at Numba's IR level: one
straight function per entry point lets LLVM keep the state in registers and drop
reference counting between the pieces (about a third faster here). Every constant the
compiled code reads lives in this file on purpose: Numba's on-disk cache is invalidated
by edits to the file that holds the function, not to modules it imports.
"""

import numpy as np
from numba import njit

# --- the feature row (its order is part of the spec and of its hash) -------------------
FEATURE_NAMES: tuple[str, ...] = (
    "ret_1",
    "sma_5_dev",
    "sma_20_dev",
    "volatility_20",
    "range_20",
    "volume_last",
    "volume_mean_5",
    "volume_sum_60",
    "volume_ratio_20",
    "volume_volatility_20",
    "spread_rel",
    "tob_imbalance",
    "microprice_dev",
    "depth_imbalance",
    "trade_flow_imbalance",
    "trade_intensity",
    "quote_intensity",
    "rsi_14",
    "macd_rel",
    "macd_signal_rel",
    "bollinger_pctb_20",
    "stoch_k_14",
    "williams_r_14",
    "cci_20",
    "atr_14_rel",
    "momentum_10_rel",
    "roc_10",
)
N_FEATURES = len(FEATURE_NAMES)
(
    F_RET_1,
    F_SMA_5,
    F_SMA_20,
    F_VOLATILITY,
    F_RANGE,
    F_VOL_LAST,
    F_VOL_MEAN_5,
    F_VOL_SUM_60,
    F_VOL_RATIO,
    F_VOL_VOLATILITY,
    F_SPREAD,
    F_TOB_IMB,
    F_MICRO_DEV,
    F_DEPTH_IMB,
    F_FLOW_IMB,
    F_TRADE_RATE,
    F_QUOTE_RATE,
    F_RSI,
    F_MACD,
    F_MACD_SIGNAL,
    F_PCTB,
    F_STOCH_K,
    F_WILLIAMS_R,
    F_CCI,
    F_ATR,
    F_MOMENTUM,
    F_ROC,
) = range(N_FEATURES)

# --- parameters (a period is one accepted quote or book top: see docs/FEATURES.md) -----
SMA_SHORT = 5
WINDOW = 20  # mean, volatility, range, Bollinger, CCI, volume ratio/volatility
VOLUME_SUM = 60
RSI_N = 14
ATR_N = 14
STOCH_N = 14
MACD_FAST = 12
MACD_SLOW = 26
MACD_SIGNAL = 9
MOMENTUM_N = 10
BOLLINGER_K = 2.0
CCI_SCALE = 0.015
FLOW_TRADES = 20  # trades in the signed-flow window
RATE_TAU_S = 5.0  # time constant of the trade/quote intensities, seconds
DEPTH_LEVELS = 5  # book levels per side whose sizes producers sum for on_book
# A window narrower than this fraction of the price counts as flat. Mids of equal value
# can differ by an ulp ((b1 + a1) / 2 vs (b2 + a2) / 2), ~1e-16 of the price; real ticks
# are >= 1e-8 of it. Without the margin a 1-ulp range would read as %R = -100 and the like.
FLAT_EPS = 1e-12
WARMUP = VOLUME_SUM  # periods until every feature is defined (the longest window)

# --- event kinds, statuses ------------------------------------------------------------
KIND_TRADE = 0
KIND_QUOTE = 1
KIND_BOOK = 2
STATUS_READY = 1
STATUS_WARMING = 0
STATUS_REJECTED = -1

# --- state layout ----------------------------------------------------------------------
S_MAGIC = 0  # layout tag, so a foreign or stale array is refused
S_PERIODS = 1
S_TRADES = 2
S_REJECTED = 3
S_HAS_TIME = 4
S_TIME = 5  # last accepted event time: int64 bits in a float64 slot (exact nanoseconds)
S_HAS_BOOK = 6
S_VOLUME_OPEN = 7  # traded size since the last period closed
S_EMA_FAST = 8
S_EMA_SLOW = 9
S_MACD_SIGNAL = 10
S_MACD_SEED = 11
S_GAIN = 12
S_LOSS = 13
S_ATR = 14
HEADER = 15
FEAT = HEADER
# The period rings are mirrored: slot i and slot i + size hold the same value, so any
# window ending at the newest slot is one contiguous, unmasked run of memory.
P_RING = FEAT + N_FEATURES  # mids
P_MASK = 31
R_RING = P_RING + 64  # simple returns
R_MASK = 31
V_RING = R_RING + 64  # volume per period
V_MASK = 63
FS_RING = V_RING + 128  # signed trade size
FZ_RING = FS_RING + 32  # trade size
T_MASK = 31
STATE_SIZE = FZ_RING + 32
LAYOUT_MAGIC = 4001.0 + STATE_SIZE  # bump the constant when the layout's meaning changes

_K_FAST = 2.0 / (MACD_FAST + 1)
_K_SLOW = 2.0 / (MACD_SLOW + 1)
_K_SIGNAL = 2.0 / (MACD_SIGNAL + 1)
_DECAY_PER_NS = -1e-9 / RATE_TAU_S
_INV_WINDOW = 1.0 / WINDOW


@njit(cache=True, error_model="numpy", inline="always")
def _status(state: np.ndarray) -> int:
    return STATUS_READY if state[S_PERIODS] >= WARMUP else STATUS_WARMING


@njit(cache=True, error_model="numpy", inline="always")
def _clock(state: np.ndarray, ts: int) -> None:
    """Decay both intensities to ``ts``; time never runs backwards (dt < 0 counts as 0)."""
    clock = state.view(np.int64)
    if state[S_HAS_TIME] == 0.0:
        state[S_HAS_TIME] = 1.0
        clock[S_TIME] = ts
        return
    dt_ns = ts - clock[S_TIME]
    if dt_ns > 0:
        decay = np.exp(dt_ns * _DECAY_PER_NS)
        state[FEAT + F_TRADE_RATE] *= decay
        state[FEAT + F_QUOTE_RATE] *= decay
        clock[S_TIME] = ts


@njit(cache=True, error_model="numpy", inline="always")
def _seed_sum(state: np.ndarray, n: int, count: int) -> float:
    """Sum of the first ``count`` mids, oldest first (TA-Lib's EMA seed order)."""
    total = 0.0
    for j in range(n - count, n):
        total += state[P_RING + (j & P_MASK)]
    return total


@njit(cache=True, error_model="numpy", inline="always")
def _wilder(state: np.ndarray, n: int, inv_mid: float, diff: float) -> None:
    """RSI and ATR: seeded by the mean of the first 14 changes, then Wilder's smoothing.

    The operation order is TA-Lib's (multiply by N-1, add, divide by N).
    """
    if n == RSI_N + 1:
        gain = 0.0
        loss = 0.0
        tr = 0.0
        for j in range(n - RSI_N, n):
            d = state[P_RING + (j & P_MASK)] - state[P_RING + ((j - 1) & P_MASK)]
            if d < 0.0:
                loss -= d
            else:
                gain += d
            tr += abs(d)
        state[S_GAIN] = gain / RSI_N
        state[S_LOSS] = loss / RSI_N
        state[S_ATR] = tr / ATR_N
    elif n > RSI_N + 1:
        gain = state[S_GAIN] * (RSI_N - 1)
        loss = state[S_LOSS] * (RSI_N - 1)
        if diff < 0.0:
            loss -= diff
        else:
            gain += diff
        state[S_GAIN] = gain / RSI_N
        state[S_LOSS] = loss / RSI_N
        state[S_ATR] = (state[S_ATR] * (ATR_N - 1) + abs(diff)) / ATR_N
    else:
        return
    total = state[S_GAIN] + state[S_LOSS]
    # No gains and no losses left (flat, or the averages decayed to rounding noise after
    # a long flat stretch): RSI 0/0 is defined as the neutral 50.
    if total * inv_mid > FLAT_EPS:
        state[FEAT + F_RSI] = 100.0 * (state[S_GAIN] / total)
    else:
        state[FEAT + F_RSI] = 50.0
    state[FEAT + F_ATR] = state[S_ATR] * inv_mid


@njit(cache=True, error_model="numpy", inline="always")
def _macd(state: np.ndarray, n: int, mid: float, inv_mid: float) -> None:
    """EMAs seeded with the SMA of their first N values, like TA-Lib's EMA."""
    if n == MACD_FAST:
        state[S_EMA_FAST] = _seed_sum(state, n, MACD_FAST) / MACD_FAST
    elif n > MACD_FAST:
        state[S_EMA_FAST] = (mid - state[S_EMA_FAST]) * _K_FAST + state[S_EMA_FAST]
    if n == MACD_SLOW:
        state[S_EMA_SLOW] = _seed_sum(state, n, MACD_SLOW) / MACD_SLOW
    elif n > MACD_SLOW:
        state[S_EMA_SLOW] = (mid - state[S_EMA_SLOW]) * _K_SLOW + state[S_EMA_SLOW]
    if n < MACD_SLOW:
        return
    macd = state[S_EMA_FAST] - state[S_EMA_SLOW]
    state[FEAT + F_MACD] = macd * inv_mid
    m = n - MACD_SLOW + 1
    if m < MACD_SIGNAL:
        state[S_MACD_SEED] += macd
        return
    if m == MACD_SIGNAL:
        state[S_MACD_SIGNAL] = (state[S_MACD_SEED] + macd) / MACD_SIGNAL
    else:
        state[S_MACD_SIGNAL] = (macd - state[S_MACD_SIGNAL]) * _K_SIGNAL + state[S_MACD_SIGNAL]
    state[FEAT + F_MACD_SIGNAL] = state[S_MACD_SIGNAL] * inv_mid


@njit(cache=True, error_model="numpy", inline="always")
def _windows(state: np.ndarray, n: int, mid: float, inv_mid: float) -> None:
    """Every windowed feature over the last periods (mids, returns, volumes).

    One pass with independent accumulators, because these sums are bound by the latency
    of dependent additions, not by arithmetic. Ring slots not yet written hold zeros and
    may enter a sum, but a feature is only stored once its window is full.
    """
    f = FEAT
    last = n - 1
    pn = P_RING + (last & P_MASK) + P_MASK + 1  # newest mid, in the mirror half
    rn = R_RING + ((last - 1) & R_MASK) + R_MASK + 1
    vn = V_RING + (last & V_MASK) + V_MASK + 1
    s5 = 0.0
    s20 = 0.0
    hi = -np.inf
    lo = np.inf
    hi14 = 0.0
    lo14 = 0.0
    r20 = 0.0
    v5 = 0.0
    v20 = 0.0
    for j in range(WINDOW):
        p = state[pn - j]
        s20 += p
        hi = max(hi, p)
        lo = min(lo, p)
        r20 += state[rn - j]
        v20 += state[vn - j]
        if j == SMA_SHORT - 1:
            s5 = s20
            v5 = v20
        elif j == STOCH_N - 1:
            hi14 = hi
            lo14 = lo
    # The rest of the 60-period volume sum, in four chains.
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for j in range(WINDOW, VOLUME_SUM, 4):
        a0 += state[vn - j]
        a1 += state[vn - j - 1]
        a2 += state[vn - j - 2]
        a3 += state[vn - j - 3]
    mean = s20 * _INV_WINDOW
    r_mean = r20 * _INV_WINDOW
    v_mean = v20 * _INV_WINDOW
    sq = 0.0
    dev = 0.0
    r_sq = 0.0
    v_sq = 0.0
    for j in range(WINDOW):
        d = state[pn - j] - mean
        sq += d * d
        dev += abs(d)
        dr = state[rn - j] - r_mean
        r_sq += dr * dr
        dv = state[vn - j] - v_mean
        v_sq += dv * dv

    volume = state[V_RING + (last & V_MASK)]
    state[f + F_VOL_LAST] = volume
    if n >= SMA_SHORT:
        state[f + F_SMA_5] = mid / (s5 / SMA_SHORT) - 1.0
        state[f + F_VOL_MEAN_5] = v5 / SMA_SHORT
    if n >= STOCH_N:
        width = hi14 - lo14
        # A flat window puts the price in the middle of its (empty) range.
        if width > FLAT_EPS * hi14:
            state[f + F_STOCH_K] = 100.0 * ((mid - lo14) / width)
            state[f + F_WILLIAMS_R] = -100.0 * ((hi14 - mid) / width)
        else:
            state[f + F_STOCH_K] = 50.0
            state[f + F_WILLIAMS_R] = -50.0
    if n >= MOMENTUM_N + 1:
        old = state[P_RING + ((last - MOMENTUM_N) & P_MASK)]
        state[f + F_MOMENTUM] = (mid - old) * inv_mid
        state[f + F_ROC] = (mid / old - 1.0) * 100.0
    if n >= WINDOW:
        sigma = np.sqrt(sq * _INV_WINDOW)
        mean_dev = dev * _INV_WINDOW
        state[f + F_SMA_20] = mid / mean - 1.0
        state[f + F_RANGE] = (hi - lo) * inv_mid
        # A flat window has no band and no deviation: %B is then the middle (0.5) and CCI 0.
        # Testing sigma > 0 instead would let the rounding of the mean turn 0/0 into 0.75.
        if hi - lo > FLAT_EPS * hi:
            lower = mean - BOLLINGER_K * sigma
            state[f + F_PCTB] = (mid - lower) / (2.0 * BOLLINGER_K * sigma)
            state[f + F_CCI] = (mid - mean) / (CCI_SCALE * mean_dev)
        else:
            state[f + F_PCTB] = 0.5
            state[f + F_CCI] = 0.0
        # v_mean == 0 means no period in the window traded (sizes are >= 0): the last period
        # is then exactly average (ratio 1) and there is no dispersion (volatility 0).
        if v_mean > 0.0:
            state[f + F_VOL_RATIO] = volume / v_mean
            state[f + F_VOL_VOLATILITY] = np.sqrt(v_sq * _INV_WINDOW) / v_mean
        else:
            state[f + F_VOL_RATIO] = 1.0
            state[f + F_VOL_VOLATILITY] = 0.0
    if n >= WINDOW + 1:
        state[f + F_VOLATILITY] = np.sqrt(r_sq * _INV_WINDOW)
    if n >= VOLUME_SUM:
        state[f + F_VOL_SUM_60] = v20 + ((a0 + a1) + (a2 + a3))


@njit(cache=True, error_model="numpy", inline="always")
def _close_period(state: np.ndarray, mid: float, inv_mid: float) -> None:
    """Append one period (this mid and the volume traded since the last one)."""
    prev_n = int(state[S_PERIODS])
    n = prev_n + 1
    state[S_PERIODS] = n
    state[P_RING + (prev_n & P_MASK)] = mid
    state[P_RING + (prev_n & P_MASK) + P_MASK + 1] = mid
    state[V_RING + (prev_n & V_MASK)] = state[S_VOLUME_OPEN]
    state[V_RING + (prev_n & V_MASK) + V_MASK + 1] = state[S_VOLUME_OPEN]
    state[S_VOLUME_OPEN] = 0.0
    diff = 0.0
    if n >= 2:
        prev = state[P_RING + ((prev_n - 1) & P_MASK)]
        diff = mid - prev
        ret = mid / prev - 1.0
        state[R_RING + ((n - 2) & R_MASK)] = ret
        state[R_RING + ((n - 2) & R_MASK) + R_MASK + 1] = ret
        state[FEAT + F_RET_1] = ret
    _wilder(state, n, inv_mid, diff)
    _macd(state, n, mid, inv_mid)
    _windows(state, n, mid, inv_mid)


@njit(cache=True, error_model="numpy", inline="always")
def _valid_size(x: float) -> bool:
    return x >= 0.0 and x < np.inf


@njit(cache=True, error_model="numpy", inline="always")
def _top(
    state: np.ndarray, ts: int, bid: float, ask: float, bid_size: float, ask_size: float
) -> bool:
    """Fold a top of book; refuse NaN, non-positive, infinite or crossed prices."""
    if not (bid > 0.0 and ask < np.inf and bid <= ask):
        return False
    if not (_valid_size(bid_size) and _valid_size(ask_size)):
        return False
    _clock(state, ts)
    f = FEAT
    state[f + F_QUOTE_RATE] += 1.0 / RATE_TAU_S
    mid = (bid + ask) * 0.5
    inv_mid = 1.0 / mid
    state[f + F_SPREAD] = (ask - bid) * inv_mid
    depth = bid_size + ask_size
    # No displayed size on either side (0/0): no imbalance, and the microprice is the mid.
    if depth > 0.0:
        state[f + F_TOB_IMB] = (bid_size - ask_size) / depth
        micro = (bid * ask_size + ask * bid_size) / depth
        state[f + F_MICRO_DEV] = (micro - mid) * inv_mid
    else:
        state[f + F_TOB_IMB] = 0.0
        state[f + F_MICRO_DEV] = 0.0
    if state[S_HAS_BOOK] == 0.0:
        # Without a book the only depth known is the first level.
        state[f + F_DEPTH_IMB] = state[f + F_TOB_IMB]
    _close_period(state, mid, inv_mid)
    return True


@njit(cache=True, error_model="numpy")
def on_quote(
    state: np.ndarray, ts: int, bid: float, ask: float, bid_size: float, ask_size: float
) -> int:
    """Fold one quote; returns STATUS_READY, STATUS_WARMING or STATUS_REJECTED."""
    if _top(state, ts, bid, ask, bid_size, ask_size):
        return _status(state)
    state[S_REJECTED] += 1.0
    return STATUS_REJECTED


@njit(cache=True, error_model="numpy")
def on_book(
    state: np.ndarray,
    ts: int,
    bid: float,
    ask: float,
    bid_size: float,
    ask_size: float,
    bid_depth: float,
    ask_depth: float,
) -> int:
    """Fold a book top plus the summed sizes of its top levels (one period, like a quote)."""
    if not (_valid_size(bid_depth) and _valid_size(ask_depth)):
        state[S_REJECTED] += 1.0
        return STATUS_REJECTED
    if not _top(state, ts, bid, ask, bid_size, ask_size):
        state[S_REJECTED] += 1.0
        return STATUS_REJECTED
    state[S_HAS_BOOK] = 1.0
    depth = bid_depth + ask_depth
    state[FEAT + F_DEPTH_IMB] = (bid_depth - ask_depth) / depth if depth > 0.0 else 0.0
    return _status(state)


@njit(cache=True, error_model="numpy")
def on_trade(state: np.ndarray, ts: int, price: float, size: float, side: float) -> int:
    """Fold one trade (side +1 buyer aggressor, -1 seller, 0 unknown).

    Trades never close a period: their size joins the open period's volume.
    """
    if not (price > 0.0 and price < np.inf and _valid_size(size)):
        state[S_REJECTED] += 1.0
        return STATUS_REJECTED
    if not (side == 1.0 or side == -1.0 or side == 0.0):
        state[S_REJECTED] += 1.0
        return STATUS_REJECTED
    _clock(state, ts)
    f = FEAT
    state[f + F_TRADE_RATE] += 1.0 / RATE_TAU_S
    k = int(state[S_TRADES])
    state[FS_RING + (k & T_MASK)] = side * size
    state[FZ_RING + (k & T_MASK)] = size
    k += 1
    state[S_TRADES] = k
    signed = 0.0
    total = 0.0
    for j in range(min(k, FLOW_TRADES)):
        signed += state[FS_RING + ((k - 1 - j) & T_MASK)]
        total += state[FZ_RING + ((k - 1 - j) & T_MASK)]
    # Only zero-size trades in the window (0/0): no flow, no imbalance.
    state[f + F_FLOW_IMB] = signed / total if total > 0.0 else 0.0
    state[S_VOLUME_OPEN] += size
    return _status(state)


# --- the live path: the same functions, and the row kept in a block -----------------------
# A live caller publishes each row as its own object. Writing the row into the caller's
# block of rows here, in the call that computes it, spares the caller an array per row
# (a numpy copy or view costs ~1 us in a running engine; these writes cost nanoseconds).


@njit(cache=True, error_model="numpy", inline="always")
def _keep(state: np.ndarray, rows: np.ndarray, slot: int) -> None:
    for j in range(N_FEATURES):
        rows[slot, j] = state[FEAT + j]


@njit(cache=True, error_model="numpy")
def on_quote_into(
    state: np.ndarray,
    rows: np.ndarray,
    slot: int,
    ts: int,
    bid: float,
    ask: float,
    bid_size: float,
    ask_size: float,
) -> int:
    """:func:`on_quote`, then the row into ``rows[slot]`` (whatever the status)."""
    status = on_quote(state, ts, bid, ask, bid_size, ask_size)
    _keep(state, rows, slot)
    return status


@njit(cache=True, error_model="numpy")
def on_book_into(
    state: np.ndarray,
    rows: np.ndarray,
    slot: int,
    ts: int,
    bid: float,
    ask: float,
    bid_size: float,
    ask_size: float,
    bid_depth: float,
    ask_depth: float,
) -> int:
    """:func:`on_book`, then the row into ``rows[slot]`` (whatever the status)."""
    status = on_book(state, ts, bid, ask, bid_size, ask_size, bid_depth, ask_depth)
    _keep(state, rows, slot)
    return status


@njit(cache=True, error_model="numpy")
def on_trade_into(
    state: np.ndarray, rows: np.ndarray, slot: int, ts: int, price: float, size: float, side: float
) -> int:
    """:func:`on_trade`, then the row into ``rows[slot]`` (whatever the status)."""
    status = on_trade(state, ts, price, size, side)
    _keep(state, rows, slot)
    return status


@njit(cache=True, error_model="numpy")
def run(
    state: np.ndarray,
    kind: np.ndarray,
    ts: np.ndarray,
    values: np.ndarray,
    out: np.ndarray,
    status: np.ndarray,
) -> None:
    """Fold every event in order, writing each event's row to ``out`` and status to ``status``.

    ``values[i]`` holds (price, size, side, -, -, -) for trades, (bid, ask, bid_size,
    ask_size, -, -) for quotes and (bid, ask, bid_size, ask_size, bid_depth, ask_depth)
    for book tops. An unknown kind is rejected like any invalid event.
    """
    for i in range(kind.shape[0]):
        k = kind[i]
        v = values[i]
        if k == KIND_QUOTE:
            s = on_quote(state, ts[i], v[0], v[1], v[2], v[3])
        elif k == KIND_TRADE:
            s = on_trade(state, ts[i], v[0], v[1], v[2])
        elif k == KIND_BOOK:
            s = on_book(state, ts[i], v[0], v[1], v[2], v[3], v[4], v[5])
        else:
            state[S_REJECTED] += 1.0
            s = STATUS_REJECTED
        status[i] = s
        for j in range(N_FEATURES):
            out[i, j] = state[FEAT + j]
