"""A generated multi-scanner file of any size, for the benchmark and the scale test."""

_TITLES = [
    "Volume breakout",
    "Gap and go",
    "Quiet squeeze",
    "Trend pullback",
    "Range fade",
    "Momentum burst",
]


def big_scanner_file(scanners: int = 4, helpers: int = 24) -> str:
    """Source of a file with ``scanners`` scanners of ``helpers`` helpers each.

    The defaults give about 1,500 lines. Every scanner reuses the name ``P`` for its
    parameter dict, so the file is contaminated exactly as real ones are.
    """
    out = [
        '"""Generated desk file: several scanners, one parameter dict name."""',
        "import math",
        "",
        "import numpy as np",
        "import pandas as pd",
        "",
        "# ─── Config ───",
        'API_KEY = "pk_live_0123456789abcdefXYZ"',
        'START = "2024-01-02"',
        "MAX_WORKERS = 4",
        "",
        "",
        "def safe_div(a, b):",
        "    return a / b.replace(0, np.nan)",
        "",
    ]
    for k in range(scanners):
        title = _TITLES[k % len(_TITLES)]
        out += [
            "",
            f"# ==== Scanner {k + 1}: {title} ====",
            "P = {",
            f'    "price_min": {2 + k}.5,',
            f'    "vol_mult": {1 + k * 0.25},',
            f'    "lookback": {10 + k * 5},',
            f'    "band_{k}": {0.01 * (k + 1):.2f},',
            "}",
            "",
        ]
        for j in range(helpers):
            out += [
                "",
                f"def s{k}_feature_{j}(df):",
                f'    """Feature {j} of scanner {k + 1}: a smoothed, scaled range statistic."""',
                f'    fast = df["close"].rolling(P["lookback"] + {j}).mean()',
                f'    slow = df["close"].rolling(P["lookback"] * 2 + {j}).mean()',
                f'    vol = df["volume"].rolling({j + 2}).sum()',
                '    rng = (df["high"] - df["low"]) / df["close"]',
                f'    band = rng.rolling({j + 3}).std() * P["band_{k}"]',
                "    trend = safe_div(fast - slow, slow)",
                "    weight = np.log1p(vol.fillna(0))",
                f"    signal = trend * weight - band * {j + 1}",
                "    if signal.isna().all():",
                "        return signal.fillna(0)",
                f"    return signal.clip(lower=-{j + 1}, upper={j + 1})",
                "",
            ]
        feats = " + ".join(f"s{k}_feature_{j}(df)" for j in range(helpers))
        out += [
            "",
            f"def scan_{title.lower().replace(' ', '_')}(df):",
            f"    score = {feats}",
            '    liquid = df["volume"] >= P["vol_mult"] * df["volume"].rolling(20).mean()',
            '    return (df["close"] >= P["price_min"]) & liquid & (score > 0)',
            "",
        ]
    out += ["", 'if __name__ == "__main__":', '    bars = pd.read_csv("bars.csv", index_col=0)']
    for k in range(scanners):
        title = _TITLES[k % len(_TITLES)]
        out.append(f"    print(scan_{title.lower().replace(' ', '_')}(bars).sum(), math.pi)")
    return "\n".join(out) + "\n"
