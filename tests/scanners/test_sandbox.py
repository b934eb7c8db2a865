"""Hostile scanner files are stopped in the sandbox, and nothing outside it is touched."""

import os
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tapereader.core.scanning.sandbox import SandboxLimits, capabilities, run_script

FAST = SandboxLimits(cpu_seconds=2, wall_seconds=15, memory_bytes=512 * 1024**2, max_processes=16)
# A documentation-only address (RFC 5737): never routed, so nothing is ever contacted.
UNREACHABLE = "203.0.113.7"


def _run(code: str, limits: SandboxLimits = FAST):
    return run_script(textwrap.dedent(code), limits)


def test_plain_code_runs_and_reports_its_layers() -> None:
    r = _run("print(sum(range(10)))\n")
    assert r.status == "ok" and r.stdout.strip() == "45"
    assert {"rlimits", "wall-clock", "audit-hook"} <= set(r.isolation)
    caps = capabilities()
    assert ("netns" in r.isolation) == caps["netns"]


def test_socket_is_blocked() -> None:
    r = _run(f"""
        import socket
        s = socket.create_connection(("{UNREACHABLE}", 80), timeout=2)
    """)
    assert r.status == "blocked" and any("socket" in b for b in r.blocked)


@pytest.mark.skipif(not capabilities()["netns"], reason="no network namespace (needs root)")
def test_without_the_hook_the_network_namespace_still_has_no_route() -> None:
    r = _run(
        f"""
        import socket
        try:
            socket.create_connection(("{UNREACHABLE}", 80), timeout=2)
            print("CONNECTED")
        except OSError as exc:
            print("refused", exc.errno)
    """,
        SandboxLimits(cpu_seconds=2, wall_seconds=15, audit=False),
    )
    assert r.status == "ok" and "CONNECTED" not in r.stdout
    assert r.stdout.startswith("refused 101")  # ENETUNREACH: no interface at all


def test_process_spawning_is_blocked(tmp_path: Path) -> None:
    marker = tmp_path / "spawned"
    r = _run(f"""
        import subprocess
        subprocess.run(["touch", {str(marker)!r}])
    """)
    assert r.status == "blocked" and any("subprocess.Popen" in b for b in r.blocked)
    assert not marker.exists()
    r = _run(f"import os\nos.system('touch {marker}')\n")
    assert r.status == "blocked" and not marker.exists()


def test_writes_to_home_and_outside_are_blocked(tmp_path: Path) -> None:
    home_file = Path.home() / f"tapereader-sandbox-{uuid.uuid4().hex}.txt"
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    try:
        r = _run(f"""
            import os, pathlib
            for target in ({str(home_file)!r}, os.path.expanduser("~/inside.txt")):
                try:
                    with open(target, "w") as f:
                        f.write("pwned")
                except PermissionError as exc:
                    print("denied", target)
            try:
                pathlib.Path({str(keep)!r}).unlink()
            except PermissionError:
                print("delete denied")
            open("scratch.txt", "w").write("fine inside")
            print(open("scratch.txt").read())
        """)
        assert not home_file.exists()
        assert keep.read_text() == "mine"
        assert f"denied {home_file}" in r.stdout and "delete denied" in r.stdout
        # HOME is the sandbox's own folder, so "~" is inside and allowed.
        assert "fine inside" in r.stdout and r.status == "blocked"
    finally:
        home_file.unlink(missing_ok=True)


def test_infinite_loop_is_stopped_by_the_cpu_limit() -> None:
    t0 = time.monotonic()
    r = _run("while True:\n    pass\n")
    assert r.status == "cpu-limit" and time.monotonic() - t0 < 10


def test_sleeping_forever_is_killed_at_the_wall_clock_limit() -> None:
    t0 = time.monotonic()
    r = _run("import time\ntime.sleep(600)\n", SandboxLimits(cpu_seconds=5, wall_seconds=1.5))
    assert r.status == "timeout" and time.monotonic() - t0 < 6


def test_unbounded_allocation_hits_the_memory_limit() -> None:
    r = _run("""
        chunks = []
        while True:
            chunks.append(bytearray(64 * 1024 * 1024))
    """)
    assert r.status == "memory"


def test_fork_bomb_is_blocked() -> None:
    r = _run("import os\nwhile True:\n    os.fork()\n")
    assert r.status == "blocked" and any("os.fork" in b for b in r.blocked)


@pytest.mark.skipif(
    not (capabilities()["pidns"] and capabilities()["cgroup-pids"]),
    reason="needs PID namespaces and a pids cgroup (root)",
)
def test_without_the_hook_a_fork_bomb_is_capped_and_reaped() -> None:
    tag = uuid.uuid4().hex
    r = _run(
        f"""
        import os, sys, time
        tag = {tag!r}
        n = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(300)
                    os._exit(0)
                n += 1
        except OSError:
            print("forks", n, flush=True)
    """,
        SandboxLimits(cpu_seconds=5, wall_seconds=20, max_processes=16, audit=False),
    )
    forks = int(r.stdout.split()[1])
    assert 0 < forks < 16
    time.sleep(0.2)
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"sandbox_child.py" in cmd and b"tr-sandbox-" in cmd:
                left.append(pid)
    assert not left  # the PID namespace took every child down with it


@pytest.mark.skipif(not capabilities()["mountns"], reason="needs a mount namespace (root)")
def test_without_the_hook_the_file_system_is_read_only_outside(tmp_path: Path) -> None:
    target = tmp_path / "outside.txt"
    r = _run(
        f"""
        import ctypes, errno, os
        try:
            open({str(target)!r}, "w").write("x")
        except OSError as exc:
            print("write", errno.errorcode[exc.errno])
        open("inside.txt", "w").write("fine")
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.mount(None, b"/", None, 32, None)  # MS_REMOUNT: try to make / writable
        print("remount", rc, errno.errorcode.get(ctypes.get_errno()))
        print("dev", sorted(os.listdir("/dev")))  # no disk, no kmsg: only harmless nodes
        try:
            open("/sys/fs/cgroup/pids/escape", "w")
        except OSError as exc:
            print("sys", errno.errorcode[exc.errno])
    """,
        SandboxLimits(cpu_seconds=5, wall_seconds=20, audit=False),
    )
    assert "write EROFS" in r.stdout and "remount -1 EPERM" in r.stdout
    assert "dev ['full', 'null', 'random', 'urandom', 'zero']" in r.stdout
    assert "sys EROFS" in r.stdout
    assert {"readonly-fs", "no-capabilities"} <= set(r.isolation)
    assert not target.exists()
