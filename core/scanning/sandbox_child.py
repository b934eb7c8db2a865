"""The sandboxed process: lock itself down, then run untrusted scanner code.

Started by :mod:`tapereader.core.scanning.sandbox` as ``python -I sandbox_child.py CONFIG``,
inside fresh network and PID namespaces when the host allows it. Standard library only:
this file must not import tapereader (the code it runs is not to be trusted with it).
Order matters: join the pids cgroup, set resource limits, open the result file, install
the audit hook, and only then touch the untrusted code.
"""

import json
import os
import resource
import signal
import sys

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_SPAWN = (
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "pty.spawn",
    "os.startfile",
)
_PATH_EVENTS = (
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "shutil.rmtree",
    "os.chmod",
    "os.chown",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.utime",
    "shutil.move",
    "shutil.copyfile",
    "os.chdir",
    "os.chroot",
)


def _limits(cfg: dict) -> None:
    cpu = int(cfg["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (cfg["memory_bytes"], cfg["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["file_bytes"], cfg["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # For root the kernel ignores RLIMIT_NPROC, or (capabilities dropped) counts every
    # root process of the host against it: there the pids cgroup is the limit instead.
    if os.geteuid() != 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["max_processes"], cfg["max_processes"]))


_MS_RDONLY, _MS_NOSUID, _MS_NOEXEC, _MS_REMOUNT, _MS_BIND = 1, 2, 8, 32, 4096
_DEVICES = ("null", "zero", "full", "random", "urandom")


def _readonly_world(workdir: str) -> list[str]:
    """In the private mount namespace: a minimal ``/dev``, everything read-only but ``workdir``.

    Returns the mount points that could not be made read-only. Runs as root in a fresh
    mount namespace (``unshare --mount``), so nothing outside this process sees it. Device
    nodes stay writable on a read-only mount, hence the new ``/dev`` holding only
    null, zero, full, random and urandom (no disks, no kmsg).
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def mount(
        src: str | None, target: str, flags: int, fstype: str | None = None, data: str | None = None
    ) -> int:
        enc = [None if x is None else x.encode() for x in (src, target, fstype, data)]
        return libc.mount(enc[0], enc[1], enc[2], flags, enc[3])

    if mount(workdir, workdir, _MS_BIND) != 0:
        return [workdir]
    stage = os.path.join(workdir, ".dev")
    os.mkdir(stage)
    for name in _DEVICES:
        open(os.path.join(stage, name), "w").close()
        mount(f"/dev/{name}", os.path.join(stage, name), _MS_BIND)
    if mount("tmpfs", "/dev", _MS_NOSUID | _MS_NOEXEC, "tmpfs", "mode=755,size=64k") != 0:
        return ["/dev"]
    for name in _DEVICES:
        open(f"/dev/{name}", "w").close()
        mount(os.path.join(stage, name), f"/dev/{name}", _MS_BIND)
        libc.umount2(os.path.join(stage, name).encode(), 2)  # MNT_DETACH
    failed = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    for mp in points:
        # Under /dev: the device nodes just bound, and mounts the new /dev now hides.
        if mp == workdir or mp.startswith("/dev/"):
            continue
        if mount(None, mp, _MS_REMOUNT | _MS_BIND | _MS_RDONLY) != 0:
            failed.append(mp)
    return failed


def _drop_capabilities() -> bool:
    """Drop every capability, so root in here cannot remount, unshare or bypass limits."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for cap in range(64):  # the bounding set too, so no exec can get them back
        libc.prctl(pr_capbset_drop, cap, 0, 0, 0)
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    return libc.capset(ctypes.byref(header), data) == 0


def _layer(name: str) -> None:
    sys.stderr.write(f"SANDBOX-LAYER {name}\n")
    sys.stderr.flush()


def _join_cgroup(path: str | None) -> None:
    if path:
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))


def _hook_factory(root: str, report):
    root = os.path.realpath(root)

    def inside(path: object) -> bool:
        if isinstance(path, int):
            return True  # an already open descriptor: opening it was checked
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return False
        real = os.path.realpath(path)
        return real == root or real.startswith(root + os.sep)

    def deny(event: str, detail: str) -> None:
        report(f"{event}: {detail}")
        raise PermissionError(f"sandbox: {event} is not allowed ({detail})")

    def hook(event: str, args: tuple) -> None:
        if event.startswith(("socket.", *_SPAWN)) and event != "socket.gethostname":
            deny(event, repr(args)[:120])
        elif event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and not inside(path):
                deny(event, f"write to {path!r}")
        elif event.startswith(_PATH_EVENTS):
            paths = [a for a in args if isinstance(a, str | bytes)]
            if not all(inside(p) for p in paths):
                deny(event, repr(paths)[:120])
        elif event == "ctypes.dlopen" and args and args[0] is not None:
            deny(event, repr(args[0]))
        elif event in ("webbrowser.open", "sys.remote_exec"):
            deny(event, repr(args)[:120])

    return hook


def _frame(columns: list[str], rows: int, seed: int, bars: str | None = None):
    """The input frame: real OHLCV bars from ``bars`` (a CSV), or a seeded random walk.

    Columns a scanner reads that the bars lack (funding, open interest...) are seeded noise.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    if bars:
        frame = pd.read_csv(bars, nrows=rows)
        frame.columns = [c.lower() for c in frame.columns]
        if "timestamp" in frame.columns:
            frame = frame.set_index(pd.to_datetime(frame.pop("timestamp")))
        data = {c: frame[c].to_numpy() for c in frame.columns}
        index = frame.index
        rows = len(frame)
    else:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, rows)))
        data = {
            "open": close * (1 + rng.normal(0, 0.01, rows)),
            "high": close * (1 + np.abs(rng.normal(0, 0.015, rows))),
            "low": close * (1 - np.abs(rng.normal(0, 0.015, rows))),
            "close": close,
            "volume": rng.lognormal(13, 0.6, rows).round(),
        }
        index = pd.date_range("2024-01-02", periods=rows, freq="D")
    attrs = set(dir(pd.DataFrame))
    for c in columns:
        if c not in data and c not in attrs and c.isidentifier():
            data[c] = rng.normal(0, 1, rows)
    return pd.DataFrame(data, index=index)


def _jsonable(value: object) -> object:
    if hasattr(value, "to_json"):
        return {"pandas": value.to_json(orient="split", date_format="iso", double_precision=12)}
    if hasattr(value, "tolist"):
        return value.tolist()
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _call(ns: dict, task: dict, frame):
    target = ns[task["entry"]]
    if task.get("method"):
        target = getattr(target(), task["method"])
    arg = [frame] if task.get("list_input") else frame
    out = target(arg)
    if task.get("column"):
        out = out[task["column"]]
    return _jsonable(out)


class _Missing:
    """Stands in for a module the sandbox lacks; using it (not importing it) fails."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> "_Missing":
        return _Missing(f"{self._name}.{attr}")

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise RuntimeError(f"{self._name} is not available in the sandbox")


class _MissingFinder:
    """Last on ``sys.meta_path``: turns a module the scanner imports but the sandbox lacks
    into a stub (only those: libraries probing optional modules must still see them fail)."""

    names: frozenset = frozenset()

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] not in cls.names:
            return None
        import importlib.machinery

        return importlib.machinery.ModuleSpec(name, cls, is_package=True)

    @staticmethod
    def create_module(spec):
        import types

        mod = types.ModuleType(spec.name)
        mod.__path__ = []
        mod.__getattr__ = lambda attr: _Missing(f"{spec.name}.{attr}")
        return mod

    @staticmethod
    def exec_module(module) -> None:
        return None


def _load(path: str, name: str, stop_line: int | None = None) -> dict:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if stop_line is not None:
        text = "".join(text.splitlines(keepends=True)[:stop_line])
    ns = {"__name__": name, "__file__": path, "__builtins__": __builtins__}
    exec(compile(text, path, "exec"), ns)
    return ns


def _value(ns: dict, path: str, kind: str, container: str) -> object:
    """The value a parameter has at run time, found the way its shape says."""
    head, *keys = path.split(".")
    if kind == "default-argument":
        import inspect

        obj: object = ns
        for part in container.split("."):
            obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
        return inspect.signature(obj).parameters[path].default  # type: ignore[arg-type]
    if kind in ("class-attribute", "dataclass-field", "params-tuple"):
        cls = ns[container]
        if kind == "params-tuple":
            return dict(cls.params)[path]
        value = getattr(cls, head)
    else:
        value = ns[head]
    for k in keys:
        value = value[k] if k in value else value[int(k)]
    return value


def main() -> int:
    """Lock down, run the configured script or proof tasks, write the result file."""
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    _join_cgroup(cfg.get("cgroup"))
    _limits(cfg)
    if cfg.get("readonly_fs"):
        failed = _readonly_world(cfg["workdir"])
        if not failed:
            _layer("readonly-fs")
        else:
            sys.stderr.write(f"SANDBOX-WARNING not read-only: {failed}\n")
        if _drop_capabilities():
            _layer("no-capabilities")
    os.chdir(cfg["workdir"])
    result = open(cfg["result"], "w", encoding="utf-8")  # noqa: SIM115 - open before the hook
    blocked: list[str] = []

    def report(msg: str) -> None:
        blocked.append(msg)
        sys.stderr.write(f"SANDBOX-BLOCKED {msg}\n")
        sys.stderr.flush()

    def out_of_cpu(signum, frame):
        result.write(
            json.dumps(
                {"status": "cpu-limit", "blocked": blocked, "error": "CPU time limit reached"}
            )
        )
        result.close()
        os._exit(3)

    # The soft limit sends SIGXCPU: report it; code stuck in C hits the hard limit (SIGKILL).
    signal.signal(signal.SIGXCPU, out_of_cpu)
    if cfg.get("audit", True):
        sys.addaudithook(_hook_factory(cfg["workdir"], report))
    out: dict = {"blocked": blocked}
    try:
        if cfg["mode"] == "script":
            import runpy

            runpy.run_path(cfg["script"], run_name="__main__")
        else:
            import importlib.util

            _MissingFinder.names = frozenset(
                n for n in cfg.get("imports", []) if importlib.util.find_spec(n) is None
            )
            sys.meta_path.append(_MissingFinder)
            frame = _frame(
                cfg["columns"], cfg.get("rows", 300), cfg.get("seed", 7), cfg.get("bars")
            )
            tasks = []
            for task in cfg["tasks"]:
                item: dict = {"scanner": task["scanner"]}
                try:
                    iso = _load(task["isolated"], "isolated_" + task["entry"])
                    item["values"] = {
                        p: repr(_value(iso, p, kind, container))
                        for p, (kind, container) in task["values"].items()
                    }
                    item["isolated"] = _call(iso, task, frame)
                    orig = _load(task["original"], "original")
                    if task.get("section"):
                        start, end = task["section"]
                        with open(task["original"], encoding="utf-8") as f:
                            lines = f.read().splitlines(keepends=True)
                        # Line numbers kept, so tracebacks point into the original file.
                        part = "\n" * (start - 1) + "".join(lines[start - 1 : end])
                        exec(compile(part, task["original"], "exec"), orig)
                    for snippet in task.get("hoisted", []):
                        exec(compile(snippet, task["original"], "exec"), orig)
                    item["original"] = _call(orig, task, frame)
                except Exception as exc:
                    item["error"] = f"{type(exc).__name__}: {exc}"[:500]
                tasks.append(item)
            out["tasks"] = tasks
        out["status"] = "ok"
    except SystemExit as exc:
        out["status"] = "ok" if exc.code in (None, 0) else "error"
        out["error"] = "" if exc.code in (None, 0) else f"SystemExit: {exc.code}"
    except MemoryError:
        out["status"] = "memory"
    except PermissionError as exc:
        out["status"] = "blocked"
        out["error"] = str(exc)[:500]
    except BaseException as exc:
        out["status"] = "error"
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
    result.write(json.dumps(out))
    result.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
