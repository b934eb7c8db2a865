"""bandit as a second opinion on the security rules, run beside the analysis.

bandit flags eval, pickle and subprocess well but misses file writes and most HTTP
clients, so it complements :mod:`tapereader.core.scanning.security` rather than replacing
it. It is pure Python and about as slow as the rest of the pipeline together, so it runs
in a long-lived worker process on the other core while the analysis goes on.
"""

import atexit
import concurrent.futures
import contextlib
import json
import subprocess
import sys
import threading

from tapereader.core.scanning.security import Finding


def bandit_findings(text: str) -> list[Finding]:
    """bandit's opinion on the same text, as findings (rule ``bandit:<test id>``)."""
    import tempfile
    import warnings
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="tr-bandit-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bandit warns about its own deprecated options
        from bandit.core import config, manager

        f = Path(tmp) / "scanner.py"
        f.write_text(text, encoding="utf-8")
        m = manager.BanditManager(config.BanditConfig(), "file", quiet=True)
        m.discover_files([str(f)])
        m.run_tests()
        issues = m.get_issue_list()
    sev = {"LOW": "info", "MEDIUM": "warning", "HIGH": "critical"}
    out = []
    for i in issues:
        # bandit's text for hard-coded passwords quotes the value: keep only the rule.
        quotes_value = i.test_id in ("B105", "B106", "B107")
        msg = "possible hard-coded password" if quotes_value else i.text
        out.append(
            Finding(
                f"bandit:{i.test_id}", sev.get(str(i.severity), "info"), i.lineno, i.col_offset, msg
            )
        )  # type: ignore[arg-type]
    return out


# bandit tests that say what one of our rules already says, by our rule's name.
BANDIT_SAME_AS = {
    "B102": "eval",
    "B307": "eval",
    "B301": "deserialize",
    "B302": "deserialize",
    "B403": "deserialize",
    "B404": "process",
    "B602": "process",
    "B603": "process",
    "B604": "process",
    "B605": "process",
    "B606": "process",
    "B607": "process",
    "B105": "hard-coded-secret",
    "B106": "hard-coded-secret",
    "B107": "hard-coded-secret",
    "B310": "http",
    "B113": "http",
    "B506": "deserialize",
}


def merge_findings(ours: list[Finding], theirs: list[Finding]) -> list[Finding]:
    """Ours plus bandit's, minus bandit's repeats of a finding we already have on that line."""
    have = {(f.line, f.rule) for f in ours}
    extra = [
        f
        for f in theirs
        if (f.line, BANDIT_SAME_AS.get(f.rule.removeprefix("bandit:"), f.rule)) not in have
    ]
    return sorted([*ours, *extra], key=lambda f: (f.line, f.column, f.rule))


class _BanditWorker:
    """A long-lived ``python -m`` process with bandit loaded, fed one file at a time.

    A plain subprocess rather than :mod:`multiprocessing`: that would re-import the
    caller's ``__main__`` in the worker, running an unguarded script a second time.
    """

    def __init__(self) -> None:
        code = "from tapereader.core.scanning.second_opinion import serve_bandit; serve_bandit()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )
        self.lock = threading.Lock()
        atexit.register(self.close)

    def ask(self, text: str) -> list[Finding]:
        with self.lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(text) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise OSError("bandit worker exited")
        return [Finding(*row) for row in json.loads(line)]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def serve_bandit() -> None:
    """The worker's loop: a JSON string per line in, a JSON list of findings per line out."""
    for line in sys.stdin:
        found = bandit_findings(json.loads(line))
        sys.stdout.write(
            json.dumps([[f.rule, f.severity, f.line, f.column, f.message] for f in found]) + "\n"
        )
        sys.stdout.flush()


_WORKER: _BanditWorker | None = None
_WORKER_LOCK = threading.Lock()


def bandit_in_background(text: str) -> "concurrent.futures.Future[list[Finding]]":
    """Start bandit on ``text`` in a worker process, so it runs beside our own analysis.

    bandit is pure Python and as slow as the rest of the pipeline together; in a separate
    process it uses the second core instead of doubling the wall time. The worker stays
    up with bandit loaded. If it cannot be used, bandit runs here instead.
    """
    future: concurrent.futures.Future[list[Finding]] = concurrent.futures.Future()

    def run() -> None:
        global _WORKER
        try:
            with _WORKER_LOCK:
                if _WORKER is None or _WORKER.proc.poll() is not None:
                    _WORKER = _BanditWorker()
                worker = _WORKER
            future.set_result(worker.ask(text))
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError, ValueError):
                future.set_result(bandit_findings(text))
                return
            future.set_exception(exc)

    threading.Thread(target=run, name="bandit-second-opinion", daemon=True).start()
    return future
