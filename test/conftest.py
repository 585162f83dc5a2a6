"""Test-wide environment: DDS stays on loopback in a test-only domain."""
import os

import pytest

# Set before any rclpy / unitree_sdk2py import in the test process and inherited by children.
os.environ.setdefault("ROS_DOMAIN_ID", "87")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("GMT_ROS_DDS_DOMAIN", "7")
os.environ.setdefault("GMT_ROS_DDS_INTERFACE", "lo")
# Fast DDS without shared memory, as every gmt_ros process runs it (gmt_ros/adapters/fastdds_profile.py):
# the test's own rclpy nodes too.
from gmt_ros.adapters import fastdds_profile

fastdds_profile.apply()


# Shared by the offline-loop test modules (module scope: each module builds them once).


@pytest.fixture(scope="module")
def contract():
    from gmt_ros.core.contract import load_contract

    return load_contract("twist2_student")


@pytest.fixture(scope="module")
def policy(contract):
    from gmt_ros.core.policy import TrackingPolicy

    return TrackingPolicy(contract)


@pytest.fixture(scope="module")
def squat():
    from gmt_ros.core.clip_library import load_named_clip

    return load_named_clip("gmt/squat")


# ------------------------------------------------------------------------------------------------
# A colcon install space of the package (built once per test session) and the vendored sources
# beside the project (../shared/vendor, or $GMT_ROS_VENDOR).

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def vendor_dir():
    from pathlib import Path

    return Path(os.environ.get("GMT_ROS_VENDOR") or REPO.parent / "shared" / "vendor")


def require_vendor(sub: str, importable: str | None = None):
    """Skip (with the reason) where the vendor folder lacks ``sub``; fail where it has it but the
    set-up did not install ``importable`` from it."""
    import importlib.util

    folder = vendor_dir() / sub
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (the vendored sources live beside the project in every developer "
                    f"session and in CI; set GMT_ROS_VENDOR to their folder)")
    if importable and importlib.util.find_spec(importable) is None:
        pytest.fail(f"{folder} is there but {importable} is not installed: run bash scripts/setup.sh "
                    f"(it runs scripts/install_ros_launch.sh)")
    return folder


@pytest.fixture(scope="session")
def install_space(tmp_path_factory):
    """``colcon build`` of a copy of the checkout (git's files); the install prefix of gmt_ros."""
    import shutil
    import subprocess
    import sys

    colcon = __import__("pathlib").Path(sys.executable).parent / "colcon"
    if not colcon.exists():
        pytest.fail(f"colcon is not installed in the venv ({colcon}); run scripts/setup.sh")
    ws = tmp_path_factory.mktemp("colcon_ws")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            dest = ws / "src" / "gmt_ros" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest)
    proc = subprocess.run([str(colcon), "build", "--event-handlers", "console_direct-"], cwd=ws,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ws / "install" / "gmt_ros"


def installed_env(prefix, **extra):
    """The environment of a sourced install space (what `source install/setup.bash` sets up)."""
    site = next((prefix / "lib").glob("python3*/site-packages"))
    env = dict(os.environ, PYTHONPATH=str(site), AMENT_PREFIX_PATH=str(prefix), PYTHONUNBUFFERED="1", **extra)
    env.pop("GMT_ROS_SHARE", None)
    return env


# ---------------------------------------------------------------- no node outlives its test module
# A node left running (a launch killed on a timeout, a fixture that failed half-way) keeps its DDS
# participant and its CPU: every later graph test then fails for a reason that is not its own
# (seen: a leaked sim2sim launch → "Failed to find a free participant index", cross-talk between
# contracts). Each module's teardown therefore looks for this checkout's node processes that are
# still alive, kills them and fails that module, naming them. Only this session's: a process is
# ours if it inherited SESSION_MARK (a developer's own `gmt-ros sim2sim` beside the suite is not).
LEFTOVER_GRACE_S = 15.0
SESSION_MARK = f"GMT_ROS_TEST_SESSION={os.getpid()}"
os.environ["GMT_ROS_TEST_SESSION"] = str(os.getpid())


def _node_processes(markers) -> dict[int, str]:
    import pathlib

    found = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not any(m in cmd for m in markers):
                continue
            ours = SESSION_MARK.encode() in (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if ours:
            found[int(entry.name)] = cmd[:160]
    return found


@pytest.fixture(scope="module", autouse=True)
def no_node_outlives_its_module(request, tmp_path_factory):
    yield
    import signal
    import sys
    import time

    venv_bin = os.path.dirname(sys.executable)
    markers = (f"{venv_bin}/gmt-ros", f"{sys.executable} -m gmt_ros.nodes", f"{sys.executable} -m sim2sim",
               f"{tmp_path_factory.getbasetemp()}/colcon_ws")
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    left = _node_processes(markers)
    while left and time.monotonic() < deadline:  # a node may still be finishing its clean stop
        time.sleep(0.25)
        left = _node_processes(markers)
    if left:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        pytest.fail(f"{request.module.__name__} left {len(left)} node process(es) running (killed): "
                    + "; ".join(f"{pid}: {cmd}" for pid, cmd in left.items()), pytrace=False)
