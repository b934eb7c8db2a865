"""Desk scanners.

Every way this desk has ever written a parameter lives in here somewhere.
"""
from dataclasses import dataclass, field
import math
import statistics

import pandas as pd

CONFIG = {
    "gap": {"close_pct": 0.03, "min_volume": 250_000},
    "reversal": {"rsi_max": 28, "drop_pct": 0.07},
    "breadth": {"min_share": 0.65},
}
SCANNERS = {}
RESULTS = []
RUNS = 0


def register(name):
    def wrap(fn):
        SCANNERS[name] = fn
        return fn
    return wrap


def rsi(close, n=14):
    delta = close.diff()
    up = delta.clip(lower=0).ewm(alpha=1 / n, adjust=False).mean()
    down = (-delta.clip(upper=0)).ewm(alpha=1 / n, adjust=False).mean()
    return 100 - 100 / (1 + up / down)


def mean(values):
    # an old helper nobody calls any more; the scanners use statistics.mean
    return sum(values) / len(values)


"""
Scanner 1 -- Gap continuation
"""


@register("gap")
def scan_gap(df):
    global RUNS
    RUNS += 1
    cfg = CONFIG["gap"]
    gap = df["open"] / df["close"].shift(1) - 1
    hits = (gap >= cfg["close_pct"]) & (df["volume"] >= cfg["min_volume"])
    RESULTS.append(("gap", int(hits.sum())))
    return hits


"""
Scanner 2 -- Oversold reversal
"""


@dataclass
class ReversalParams:
    rsi_period: int = 14
    rsi_max: float = CONFIG["reversal"]["rsi_max"]
    confirm_bars: int = 2
    tags: list = field(default_factory=list)


@register("reversal")
def scan_reversal(df, p=ReversalParams()):
    r = rsi(df["close"], p.rsi_period)
    drop = df["close"] / df["close"].rolling(10).max() - 1
    hits = (r <= p.rsi_max) & (drop <= -CONFIG["reversal"]["drop_pct"])
    RESULTS.append(("reversal", int(hits.sum())))
    return hits.rolling(p.confirm_bars).sum() >= p.confirm_bars


"""
Scanner 3 -- Channel breakout (class based)
"""


class ChannelBreakoutScanner:
    params = (("period", 55), ("devfactor", 2.0))
    exit_after = 10
    min_price: float = 3.0

    def parameters(self):
        return [
            {"name": "atr_window", "default": 21},
            {"name": "atr_stop", "default": 2.5},
        ]

    def scan(self, df):
        period = dict(self.params)["period"]
        upper = df["high"].rolling(period).max().shift(1)
        hits = (df["close"] > upper) & (df["close"] >= self.min_price)
        width = df["close"].rolling(period, min_periods=40).std() * dict(self.params)["devfactor"]
        return hits & (width > 0)


"""
Scanner 4 -- Breadth thrust
"""


def scan_breadth(frames):
    shares = [float((f["close"] > f["close"].rolling(50).mean()).iloc[-1]) for f in frames]
    share = statistics.mean(shares)
    RESULTS.append(("breadth", share))
    return share >= CONFIG["breadth"]["min_share"] and math.isfinite(share)


if __name__ == "__main__":
    df = pd.read_csv("bars.csv", index_col=0)
    for name, fn in SCANNERS.items():
        print(name, int(fn(df).sum()))
    print(ChannelBreakoutScanner().scan(df).sum())
    print(scan_breadth([df]))
    print(RESULTS, RUNS)
