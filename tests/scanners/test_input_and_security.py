"""Bad input is refused clearly; dangerous code is flagged with line, severity and reason."""

import ast
import json
import textwrap
from pathlib import Path

import msgspec
import pytest

from tapereader.core.scanning.analysis import analyse
from tapereader.core.scanning.parse import ScannerInputError
from tapereader.core.scanning.second_opinion import bandit_findings
from tapereader.core.scanning.security import analyse_security


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "broken.py", b"import os\n\ndef scan_x(df):\n    return df[\n")
    with pytest.raises(ScannerInputError) as err:
        analyse(p)
    assert err.value.path == str(p) and err.value.line == 4
    assert "broken.py:4: not valid Python" in str(err.value)


def test_binary_file_is_refused(tmp_path: Path) -> None:
    p = _write(tmp_path, "blob.py", b"x = 1\n\x00\x01\x02binary")
    with pytest.raises(ScannerInputError, match=r"blob.py:2: binary file"):
        analyse(p)


def test_non_utf8_and_non_python_files_are_refused(tmp_path: Path) -> None:
    latin = _write(tmp_path, "latin.py", b"x = 1\ny = '\xe9t\xe9'\n")
    with pytest.raises(ScannerInputError, match=r"latin.py:2: not UTF-8"):
        analyse(latin)
    csv = _write(tmp_path, "prices.csv", b"date,open,close\n2024-01-02,1.0,2.0\n")
    with pytest.raises(ScannerInputError, match=r"prices.csv:\d+: not valid Python"):
        analyse(csv)
    missing = tmp_path / "missing.py"
    with pytest.raises(ScannerInputError, match=r"missing\.py: cannot read file"):
        analyse(missing)


def test_a_file_without_scanners_says_so(tmp_path: Path) -> None:
    p = _write(tmp_path, "helpers.py", b"def add(a, b):\n    return a + b\n")
    with pytest.raises(ScannerInputError, match="no scanners found"):
        analyse(p)


HOSTILE = textwrap.dedent("""\
    import subprocess as sp
    import os, pickle, ctypes, socket, webbrowser, shutil
    import requests, httpx, aiohttp, websockets
    from urllib.request import urlopen
    from pathlib import Path

    def scan_everything(df):
        sp.run(["ls"])
        os.system("id")
        eval("1 + 1")
        exec("x = 1")
        __import__("json")
        pickle.loads(b"")
        socket.create_connection(("example.test", 80))
        requests.get("https://example.test")
        httpx.get("https://example.test")
        aiohttp.ClientSession()
        websockets.connect("wss://example.test")
        urlopen("https://example.test")
        open("out.txt", "w").write("x")
        df.to_csv("hits.csv")
        df.to_parquet("hits.parquet")
        Path("notes.txt").write_text("x")
        os.remove("old.txt")
        shutil.rmtree("cache")
        webbrowser.open("https://example.test")
        return os.environ.get("HOME"), os.getenv("USER")
""")


def test_security_rules_cover_every_category() -> None:
    findings, _ = analyse_security(ast.parse(HOSTILE))
    by_rule: dict[str, set[int]] = {}
    for f in findings:
        by_rule.setdefault(f.rule, set()).add(f.line)
        assert f.severity in ("info", "warning", "critical") and f.message
    expect = {
        "process": {1, 8, 9},
        "eval": {10, 11},
        "dynamic-import": {12},
        "deserialize": {2, 13},
        "ctypes": {2},
        "socket": {2, 14},
        "http": {3, 4, 15, 16, 17, 18, 19},
        "file-write": {20, 21, 22, 23},
        "file-delete": {24, 25},
        "webbrowser": {2, 26},
        "environment": {27},
    }
    for rule, lines in expect.items():
        assert lines <= by_rule.get(rule, set()), (rule, by_rule.get(rule))
    crit = {f.line for f in findings if f.severity == "critical"}
    assert {8, 9, 10, 13, 14, 24, 25} <= crit


def test_bandit_is_a_second_opinion() -> None:
    ids = {f.rule for f in bandit_findings(HOSTILE)}
    assert "bandit:B602" in ids or "bandit:B605" in ids or "bandit:B603" in ids
    assert "bandit:B307" in ids  # eval


def test_hard_coded_key_becomes_an_env_lookup_and_a_finding(tmp_path: Path) -> None:
    key = "sk_live_51HxQz8L2kfj39sLQ0"
    src = textwrap.dedent(f'''\
        import requests
        API_KEY = "{key}"
        PRICE_MIN = 5

        def fetch(sym):
            return requests.get("https://example.test/" + sym, params={{"apiKey": API_KEY}})

        def scan_price(df):
            data = fetch("AAPL")
            return (df["close"] > PRICE_MIN) & bool(data)
    ''')
    a = analyse(_write(tmp_path, "keyed.py", src.encode()))
    text = a.sources["scan_price"]
    assert key not in text and 'API_KEY = os.environ["API_KEY"]' in text.replace("'", '"')
    assert text.startswith('"""') and "\nimport os\n" in text
    blob = json.dumps(msgspec.to_builtins(a.report))
    assert key not in blob
    secret = [f for f in a.report.findings if f.rule == "hard-coded-secret"]
    assert secret and secret[0].line == 2 and secret[0].severity == "critical"
    # bandit's own hard-coded-password message would quote the value: it is replaced.
    assert all(key not in f.message for f in a.report.findings)


def test_secret_heuristic_ignores_identifiers_that_are_not_keys() -> None:
    src = textwrap.dedent("""\
        CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
        API_KEY = "your-api-key-here"
        TOKEN_URL = "https://auth.example.test/oauth2/token"
        PASSWORD_FILE = "/etc/scanner/passwd"
        SECRET = "s3cr3tV4lu3XYZ"
    """)
    _, secrets = analyse_security(ast.parse(src))
    assert [s.name for s in secrets] == ["SECRET"]


def test_form_feeds_and_crlf_do_not_shift_line_numbers(tmp_path: Path) -> None:
    src = (
        "import pandas as pd\r\n\x0c\r\n"
        "P = {'vol_mult': 2}\r\n\r\n"
        "def scan_volume(df):\r\n"
        "    return df['volume'] > P['vol_mult'] * 1000\r\n"
    )
    a = analyse(_write(tmp_path, "crlf.py", src.encode()))
    (s,) = a.report.scanners
    assert (s.name, s.start_line, s.end_line) == ("scan_volume", 5, 6)
    assert next((p.name, p.value, p.line) for p in s.parameters) == ("P.vol_mult", "2", 3)
    compile(a.sources["scan_volume"], "out.py", "exec")


def test_absurdly_deep_code_is_refused_not_crashed(tmp_path: Path) -> None:
    src = "def scan_x(df):\n    return " + " + ".join(["df"] * 3000) + " > 1\n"
    p = _write(tmp_path, "deep.py", src.encode())
    try:
        a = analyse(p, second_opinion=False)
    except ScannerInputError as exc:
        assert "deep.py" in str(exc)
    else:
        assert a.report.scanners[0].name == "scan_x"


def test_secrets_stay_out_of_contamination_details_and_messages(tmp_path: Path) -> None:
    k1, k2 = "tok_A1b2C3d4E5f6G7h8", "tok_Z9y8X7w6V5u4T3s2"
    src = textwrap.dedent(f'''\
        # ==== Scanner 1: alpha ====
        P = {{"token": "{k1}", "price_min": 5}}

        def fetch(sym, key="{k1}"):
            return sym + key

        def scan_alpha(df):
            return (df["close"] > P["price_min"]) & bool(P["token"]) & bool(fetch("A"))

        # ==== Scanner 2: beta ====
        P = {{"token": "{k2}", "price_min": 9}}

        def fetch(sym, key="{k2}", retries=3):
            return sym + key

        def scan_beta(df):
            return (df["close"] > P["price_min"]) & bool(P["token"]) & bool(fetch("B"))
    ''')
    a = analyse(_write(tmp_path, "tokens.py", src.encode()), second_opinion=False)
    details = [c.detail for c in a.report.contamination]
    assert any("token" in d for d in details) and any("fetch" in d for d in details)
    blob = json.dumps(msgspec.to_builtins(a.report)) + "".join(a.sources.values())
    assert k1 not in blob and k2 not in blob
    assert all(s.isolated for s in a.report.scanners)
    assert 'os.environ["P_TOKEN"]' in a.sources["scan_alpha"]
