"""Running untrusted scanner code in a separate, locked-down process.

Layers, strongest first (each reported in :attr:`SandboxResult.isolation`):

* ``netns``: a fresh network namespace (``unshare --net``, needs root): no interface but a
  loopback that is down, so nothing can be reached at all.
* ``pidns``: a fresh PID namespace; when the sandboxed process ends or is killed, the kernel
  kills everything it started.
* ``cgroup-pids``: a pids cgroup caps processes and threads (root, cgroup v1 or v2).
* ``rlimits`` (always): CPU seconds, address space, file size, open files, processes (the
  last is ignored by the kernel for root, hence the cgroup).
* ``audit-hook`` (always): a :func:`sys.addaudithook` hook refuses sockets, process
  spawning, writes, deletes and renames outside the sandbox's own temporary directory, and
  ``ctypes`` loading a named library. It sees only what goes through Python: native code in
  an extension module can bypass it, which is why the kernel-level layers come first.
* a wall-clock limit: the whole process group is killed when it runs out.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Literal

import msgspec

_CHILD = Path(__file__).with_name("sandbox_child.py")
Status = Literal["ok", "error", "blocked", "timeout", "cpu-limit", "memory", "killed"]


class SandboxLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Resource limits for one sandboxed run."""

    cpu_seconds: int = 10
    wall_seconds: float = 30.0
    memory_bytes: int = 2 * 1024**3
    file_bytes: int = 16 * 1024**2
    max_processes: int = 64
    audit: bool = True  # switch off only to test the kernel-level layers on their own


class SandboxResult(msgspec.Struct, kw_only=True):
    """How a sandboxed run ended and what it reported."""

    status: Status
    returncode: int | None
    seconds: float
    isolation: list[str]
    blocked: list[str] = []
    error: str = ""
    stdout: str = ""
    stderr: str = ""
    payload: dict = {}


def _can(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


_CAPS: dict[str, bool] = {}


def capabilities() -> dict[str, bool]:
    """Which kernel-level layers this host allows (probed once)."""
    if not _CAPS:
        unshare = shutil.which("unshare")
        root = hasattr(os, "geteuid") and os.geteuid() == 0
        _CAPS["netns"] = bool(unshare and root and _can([unshare, "--net", "true"]))
        _CAPS["pidns"] = bool(
            _CAPS["netns"] and _can([unshare, "--net", "--pid", "--fork", "--kill-child", "true"])
        )  # type: ignore[list-item]
        _CAPS["mountns"] = bool(_CAPS["netns"] and _can([unshare, "--mount", "true"]))  # type: ignore[list-item]
        _CAPS["cgroup-pids"] = _cgroup_root() is not None
    return dict(_CAPS)


def _cgroup_root() -> Path | None:
    """Where a pids cgroup can be made: cgroup v1's pids hierarchy, or v2 with pids."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return None
    v1 = Path("/sys/fs/cgroup/pids")
    if (v1 / "cgroup.procs").exists() and os.access(v1, os.W_OK):
        return v1
    v2 = Path("/sys/fs/cgroup")
    controllers = v2 / "cgroup.controllers"
    try:
        if (
            controllers.exists()
            and "pids" in controllers.read_text().split()
            and os.access(v2, os.W_OK)
        ):
            return v2
    except OSError:
        return None
    return None


def _make_cgroup(limit: int) -> Path | None:
    base = _cgroup_root()
    if base is None:
        return None
    path = base / f"tapereader-sandbox-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(limit))
    except OSError:
        return None
    return path


def _remove_cgroup(path: Path | None) -> None:
    if path is None:
        return
    for _ in range(50):
        try:
            procs = (path / "cgroup.procs").read_text().split()
            for pid in procs:
                with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            path.rmdir()
            return
        except OSError:
            time.sleep(0.02)


def run_sandboxed(
    config: dict, limits: SandboxLimits, workdir: Path, env: dict[str, str] | None = None
) -> SandboxResult:
    """Run the sandbox child with ``config`` (mode ``script`` or ``proof``) in ``workdir``."""
    caps = capabilities()
    cgroup = _make_cgroup(limits.max_processes) if caps["cgroup-pids"] else None
    result_file = workdir / ".sandbox-result.json"
    cfg = dict(
        config,
        workdir=str(workdir),
        result=str(result_file),
        cgroup=str(cgroup) if cgroup else None,
        cpu_seconds=limits.cpu_seconds,
        memory_bytes=limits.memory_bytes,
        file_bytes=limits.file_bytes,
        max_processes=limits.max_processes,
        audit=limits.audit,
        readonly_fs=caps["mountns"],
    )
    cfg_file = workdir / ".sandbox-config.json"
    cfg_file.write_text(json.dumps(cfg), encoding="utf-8")
    cmd = [sys.executable, "-I", str(_CHILD), str(cfg_file)]
    isolation = ["rlimits", "wall-clock"] + (["audit-hook"] if limits.audit else [])
    if caps["netns"]:
        prefix = [shutil.which("unshare") or "unshare", "--net"]
        isolation.append("netns")
        if caps["pidns"]:
            prefix += ["--pid", "--fork", "--kill-child"]
            isolation.append("pidns")
        if caps["mountns"]:
            prefix.append("--mount")  # private propagation: the child's remounts stay inside
        cmd = prefix + cmd
    if cgroup is not None:
        isolation.append("cgroup-pids")
    child_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
        **(env or {}),
    }
    t0 = time.perf_counter()
    with open(workdir / ".stdout", "wb") as out, open(workdir / ".stderr", "wb") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env=child_env,
            start_new_session=True,
        )
        timed_out = False
        try:
            proc.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.perf_counter() - t0
    _remove_cgroup(cgroup)
    stdout = _tail(workdir / ".stdout")
    stderr = _tail(workdir / ".stderr")
    isolation += [
        ln.split(" ", 1)[1] for ln in stderr.splitlines() if ln.startswith("SANDBOX-LAYER ")
    ]
    blocked = [
        ln.split(" ", 1)[1] for ln in stderr.splitlines() if ln.startswith("SANDBOX-BLOCKED ")
    ]
    payload: dict = {}
    if result_file.exists():
        try:
            payload = json.loads(result_file.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            payload = {}
    status: Status
    rc = proc.returncode
    if timed_out:
        status = "timeout"
    elif rc is not None and rc < 0 and -rc in (signal.SIGXCPU, signal.SIGKILL) and not payload:
        status = "cpu-limit" if -rc == signal.SIGXCPU else "killed"
    elif rc is not None and rc in (128 + signal.SIGXCPU, 128 + signal.SIGKILL) and not payload:
        status = "cpu-limit" if rc == 128 + signal.SIGXCPU else "killed"
    elif "MemoryError" in stderr and not payload:
        status = "memory"
    elif payload.get("status") == "ok" and blocked:
        status = "blocked"
    elif payload:
        status = payload.get("status", "error")
    else:
        status = "error"
    return SandboxResult(
        status=status,
        returncode=rc,
        seconds=round(seconds, 3),
        isolation=isolation,
        blocked=blocked,
        error=payload.get("error", ""),
        stdout=stdout,
        stderr=stderr,
        payload=payload,
    )


def _tail(path: Path, limit: int = 20_000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace")


def run_script(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` as ``__main__`` in a fresh sandbox; its temporary directory is removed."""
    with tempfile.TemporaryDirectory(prefix="tr-sandbox-") as tmp:
        work = Path(tmp)
        script = work / "scanner.py"
        script.write_text(code, encoding="utf-8")
        return run_sandboxed(
            {"mode": "script", "script": str(script)}, limits or SandboxLimits(), work
        )
