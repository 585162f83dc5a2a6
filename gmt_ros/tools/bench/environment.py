"""What a benchmark runs on and in: the commit measured, the machine, the busy-loop load of the
"loaded" phases, a process's resident memory."""
from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def git_info(repo: Path | None = None) -> dict:
    """The commit measured and whether tracked files differ from it (no lock taken)."""
    repo = repo or Path(__file__).resolve().parents[3]
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # never write the index (others use this repo)

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], check=False, capture_output=True, text=True, env=env, timeout=20)

    try:
        head = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"commit": None, "dirty": None, "error": str(exc)}
    if head.returncode != 0:
        return {"commit": None, "dirty": None, "error": head.stderr.strip()}
    changed = [line[3:] for line in status.stdout.splitlines() if line.strip()]
    return {"commit": head.stdout.strip(), "dirty": bool(changed), "changed_files": changed}


def machine_info() -> dict:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("onnxruntime", "mujoco"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return {"nproc": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "cpu_model": model,
            "kernel": platform.release(), "load_average_start": [round(x, 2) for x in os.getloadavg()],
            "versions": versions}


@contextlib.contextmanager
def busy_load(pin: bool = True):
    """One busy-loop process for the "loaded" measurements, pinned to the last usable CPU (the
    measured processes are not pinned: the scheduler keeps them off it while another is free).
    Always stopped on exit. Yields {"pid", "cpu"}."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu = None
    try:
        if pin:
            cpu = max(os.sched_getaffinity(0))
            os.sched_setaffinity(proc.pid, {cpu})
        time.sleep(0.2)  # the interpreter has started spinning
        yield {"pid": proc.pid, "cpu": cpu}
    finally:
        proc.kill()
        proc.wait(timeout=5)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None
