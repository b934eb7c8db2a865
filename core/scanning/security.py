"""Dangerous code, found on the AST before anything runs.

Calls are resolved through the file's imports (``import subprocess as sp`` makes
``sp.run`` into ``subprocess.run``), so renaming a module does not hide it. Hard-coded
secrets are found here too; their values never leave this module except to be replaced.
"""

import ast
import re
from dataclasses import dataclass
from typing import Literal

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One security finding: where, how bad, and why."""

    rule: str
    severity: Severity
    line: int
    column: int
    message: str


@dataclass(frozen=True, slots=True)
class Secret:
    """A hard-coded credential: the name it is bound to and where."""

    name: str
    env_var: str
    line: int
    value: str


_CALLS: dict[str, tuple[str, Severity, str]] = {}


def _rule(rule: str, severity: Severity, reason: str, *names: str) -> None:
    for n in names:
        _CALLS[n] = (rule, severity, reason)


_rule(
    "process",
    "critical",
    "spawns a process",
    "os.system",
    "os.popen",
    "os.fork",
    "os.forkpty",
    "os.execv",
    "os.execve",
    "os.execl",
    "os.execvp",
    "os.spawnl",
    "os.spawnv",
    "os.posix_spawn",
    "pty.spawn",
    "subprocess.run",
    "subprocess.Popen",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "asyncio.create_subprocess_exec",
    "asyncio.create_subprocess_shell",
)
_rule(
    "process",
    "warning",
    "starts worker processes",
    "multiprocessing.Process",
    "multiprocessing.Pool",
    "concurrent.futures.ProcessPoolExecutor",
)
_rule("eval", "critical", "evaluates code built at run time", "eval", "exec")
_rule("eval", "warning", "compiles code at run time", "compile")
_rule(
    "dynamic-import",
    "warning",
    "imports a module named at run time",
    "__import__",
    "importlib.import_module",
    "importlib.__import__",
)
_rule(
    "deserialize",
    "critical",
    "unpickling runs arbitrary code",
    "pickle.load",
    "pickle.loads",
    "marshal.load",
    "marshal.loads",
    "dill.load",
    "dill.loads",
    "shelve.open",
    "pandas.read_pickle",
    "joblib.load",
)
_rule(
    "deserialize",
    "warning",
    "yaml.load without a safe loader can build objects",
    "yaml.load",
    "yaml.unsafe_load",
)
_rule(
    "socket",
    "critical",
    "opens a network socket",
    "socket.socket",
    "socket.create_connection",
    "socket.socketpair",
    "socket.fromfd",
)
_rule(
    "http",
    "warning",
    "talks to the network",
    "requests.get",
    "requests.post",
    "requests.put",
    "requests.delete",
    "requests.request",
    "requests.patch",
    "requests.Session",
    "aiohttp.ClientSession",
    "aiohttp.request",
    "httpx.get",
    "httpx.post",
    "httpx.Client",
    "httpx.AsyncClient",
    "httpx.stream",
    "urllib.request.urlopen",
    "urllib.request.Request",
    "urllib.request.urlretrieve",
    "http.client.HTTPConnection",
    "http.client.HTTPSConnection",
    "websockets.connect",
    "websocket.create_connection",
    "ftplib.FTP",
    "smtplib.SMTP",
    "telnetlib.Telnet",
)
_rule(
    "webbrowser",
    "warning",
    "opens a web browser",
    "webbrowser.open",
    "webbrowser.open_new",
    "webbrowser.open_new_tab",
)
_rule(
    "file-delete",
    "critical",
    "deletes files",
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "os.removedirs",
    "shutil.rmtree",
)
_rule(
    "file-write",
    "warning",
    "writes or moves files",
    "shutil.move",
    "shutil.copy",
    "shutil.copyfile",
    "shutil.copytree",
    "os.rename",
    "os.replace",
    "os.makedirs",
    "os.mkdir",
    "os.truncate",
)
_rule("environment", "info", "reads the environment", "os.getenv", "os.environ.get", "os.putenv")

_MODULES: dict[str, tuple[str, Severity, str]] = {
    "ctypes": ("ctypes", "critical", "imports ctypes: arbitrary native calls"),
    "cffi": ("ctypes", "critical", "imports cffi: arbitrary native calls"),
    "socket": ("socket", "warning", "imports socket"),
    "requests": ("http", "info", "imports an HTTP client"),
    "aiohttp": ("http", "info", "imports an HTTP client"),
    "httpx": ("http", "info", "imports an HTTP client"),
    "websockets": ("http", "info", "imports a WebSocket client"),
    "urllib.request": ("http", "info", "imports an HTTP client"),
    "subprocess": ("process", "warning", "imports subprocess"),
    "pickle": ("deserialize", "info", "imports pickle"),
    "marshal": ("deserialize", "info", "imports marshal"),
    "webbrowser": ("webbrowser", "info", "imports webbrowser"),
}
_WRITE_METHODS = {
    "to_csv",
    "to_parquet",
    "to_excel",
    "to_json",
    "to_pickle",
    "to_feather",
    "to_hdf",
    "to_sql",
    "write_text",
    "write_bytes",
    "savefig",
    "to_html",
}
_DELETE_METHODS = {"unlink", "rmdir"}
_SECRET_NAME = re.compile(
    r"(?i)(api[_-]?key|apikey|secret|token|passw(or)?d|private[_-]?key|"
    r"access[_-]?key|auth)"
)
_PLACEHOLDER = re.compile(r"(?i)^(your|xxx|changeme|<|\$\{|none|test|dummy|example)")


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.insert(0, node.id)
        return ".".join(parts)
    return None


def _is_secret_value(value: object) -> bool:
    """Long, unbroken, mixing letters and digits: how keys and tokens look (OIDs, URLs,
    paths and placeholders do not)."""
    return (
        isinstance(value, str)
        and len(value) >= 12
        and " " not in value
        and any(c.isalpha() for c in value)
        and any(c.isdigit() for c in value)
        and not _PLACEHOLDER.match(value)
        and not value.startswith(("http", "/", "."))
    )


class _Visitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.findings: list[Finding] = []
        self.secrets: list[Secret] = []
        self.seen: set[int] = set()

    def _add(self, rule: str, sev: Severity, node: ast.AST, msg: str) -> None:
        self.findings.append(Finding(rule, sev, node.lineno, node.col_offset, msg))  # type: ignore[attr-defined]

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            top = a.name.split(".")[0]
            self.aliases[a.asname or top] = a.name if a.asname else top
            self._module(a.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        self._module(mod, node)
        for a in node.names:
            if a.name == "*":
                self._add("star-import", "info", node, f"star import from {mod}: names unknown")
                continue
            self.aliases[a.asname or a.name] = f"{mod}.{a.name}"
            self._module(f"{mod}.{a.name}", node)

    def _module(self, name: str, node: ast.AST) -> None:
        hit = _MODULES.get(name) or _MODULES.get(name.split(".")[0])
        if hit and (name in _MODULES or name.split(".")[0] in _MODULES):
            self._add(hit[0], hit[1], node, hit[2])

    def _qualify(self, node: ast.expr) -> str | None:
        d = _dotted(node)
        if d is None:
            return None
        head, _, rest = d.partition(".")
        base = self.aliases.get(head, head)
        q = f"{base}.{rest}" if rest else base
        return q.replace("pd.", "pandas.", 1) if q.startswith("pd.") else q

    def visit_Call(self, node: ast.Call) -> None:
        q = self._qualify(node.func)
        if q is not None:
            hit = _CALLS.get(q.removeprefix("builtins."))
            if hit:
                self._add(hit[0], hit[1], node, f"{q}(): {hit[2]}")
            elif q in ("open", "io.open", "builtins.open") or (
                q.endswith(".open") and q.startswith("pathlib")
            ):
                self._open(node, q)
        if isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr in _WRITE_METHODS:
                self._add("file-write", "warning", node, f".{attr}(): writes a file")
            elif attr in _DELETE_METHODS:
                self._add("file-delete", "critical", node, f".{attr}(): deletes a path")
            elif attr == "open" and not (q or "").startswith(("webbrowser", "shelve")):
                self._open(node, attr)
        for kw in node.keywords:
            if (
                kw.arg
                and _SECRET_NAME.search(kw.arg)
                and isinstance(kw.value, ast.Constant)
                and _is_secret_value(kw.value.value)
            ):
                self._secret(kw.arg.upper(), kw.value)
        self.generic_visit(node)

    def _open(self, node: ast.Call, q: str) -> None:
        mode: object = "r"
        if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            mode = node.args[1].value
        for kw in node.keywords:
            if kw.arg == "mode" and isinstance(kw.value, ast.Constant):
                mode = kw.value.value
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            self._add("file-write", "warning", node, f"{q}(mode={mode!r}): writes a file")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if self._qualify(node) == "os.environ":
            self._add("environment", "info", node, "os.environ: reads the environment")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            if (
                isinstance(t, ast.Name)
                and _SECRET_NAME.search(t.id)
                and isinstance(node.value, ast.Constant)
                and _is_secret_value(node.value.value)
            ):
                self._secret(t.id, node.value)
            if isinstance(t, ast.Name) and isinstance(node.value, ast.Dict):
                self._dict(node.value, t.id + "_")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        self._dict(node, "")
        self.generic_visit(node)

    def _dict(self, node: ast.Dict, prefix: str) -> None:
        for k, v in zip(node.keys, node.values, strict=True):
            if (
                isinstance(k, ast.Constant)
                and isinstance(k.value, str)
                and _SECRET_NAME.search(k.value)
                and isinstance(v, ast.Constant)
                and _is_secret_value(v.value)
                and id(v) not in self.seen
            ):
                self._secret(prefix + k.value, v)

    def _secret(self, name: str, value: ast.Constant) -> None:
        self.seen.add(id(value))
        env = re.sub(r"\W", "_", name).upper()
        self.secrets.append(Secret(name, env, value.lineno, str(value.value)))
        self._add(
            "hard-coded-secret",
            "critical",
            value,
            f"hard-coded credential in {name}: replaced by os.environ[{env!r}]",
        )


def analyse_security(tree: ast.Module) -> tuple[list[Finding], list[Secret]]:
    """Findings and hard-coded secrets in a parsed module."""
    v = _Visitor()
    v.visit(tree)
    findings = sorted(set(v.findings), key=lambda f: (f.line, f.column, f.rule))
    return findings, v.secrets
