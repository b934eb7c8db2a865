# %% [markdown]
# Exported from the research notebook; each cell grew its own scanner.

# %% Imports and universe
import numpy as np
import pandas as pd

UNIVERSE = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
MIN_NOTIONAL = 50_000


def notional(df):
    return df["close"] * df["volume"]


# %% Scanner 1: funding squeeze
def zscore(s):
    return (s - s.rolling(48).mean()) / s.rolling(48).std()


def funding_squeeze_scan(df, z_max=-2.0, oi_jump=0.08):
    z = zscore(df["funding"])
    oi = df["open_interest"].pct_change(6)
    return (z <= z_max) & (oi >= oi_jump) & (notional(df) >= MIN_NOTIONAL)


# %% Scanner 2: range expansion
def zscore(s):
    # same name and signature, a different window: the later one is what both call
    return (s - s.rolling(24).mean()) / s.rolling(24).std()


def range_expansion_scan(df, atr_len=14, expand=2.2):
    tr = np.maximum(df["high"] - df["low"], (df["high"] - df["close"].shift()).abs())
    atr = tr.rolling(atr_len).mean()
    return (tr >= expand * atr) & (zscore(df["volume"]) > 1.5)


## Scanner 3: basis dislocation
BASIS_BPS = 35


def basis_scan(df):
    basis = (df["close"] / df["index_price"] - 1) * 10_000
    return basis.abs() >= BASIS_BPS


# %% Run
if __name__ == "__main__":
    frames = {s: pd.read_parquet(f"{s}.parquet") for s in UNIVERSE}
    for sym, df in frames.items():
        print(sym, funding_squeeze_scan(df).sum(), range_expansion_scan(df).sum())
        print(sym, basis_scan(df).sum())
