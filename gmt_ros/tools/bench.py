"""`gmt-ros bench`: the performance figures of the README table, measured in one run.

    gmt-ros bench [--json OUT] [--sections policy,graph,rtf] [--steps 3000] [--graph-seconds 30]
                  [--rtf-seconds 20] [--rtf-motion NAME] [--dr hard] [--no-load] [--no-load-pin]
                  [--launch-settings] [--node-param NODE.NAME=VALUE ...] [--nice N]
                  [--keep-logs DIR]

Every section is measured twice: *idle* (nothing but the measurement; other users of the machine
are not stopped, hence the load average in the report) and *loaded*: one busy-loop process
(``while True: pass``) pinned to the last CPU (``--no-load-pin``: not pinned), stopped right after.

``policy`` - one ``TrackingPolicy.step`` of the shipped TWIST2 student in this process (no ROS):
    observation build, ONNX run, action -> command, each timed inside the same step; a synthetic
    walking reference (a new window object every step, so its checks run every step, as with the
    launch file's 50 Hz windows) and noisy standing states. Also the GMT observation builder alone (2154
    values, 20 reference frames; no GMT weights exist).

``graph`` - the sim2sim node graph as separate processes (``gmt_ros.tools.sim2sim_run``: sim,
    bridge, policy, motion player; supervisor walked to ``policy`` mode, robot standing on the
    player's idle windows), with ``gmt-ros sim2sim``'s node settings: its lighter ones by default
    (motion windows shorter and at 25 Hz, /joint_states at 250 Hz; at the launch file's settings
    the graph needs more than this machine's 2 cores), ``--launch-settings`` for the launch file's,
    ``--node-param`` for experiments. The sim, bridge and policy processes are the shipped nodes
    with a thin recording layer (``probe`` below: a timestamp per callback, no other change), so
    every figure is taken where it happens, on CLOCK_MONOTONIC, which all processes share:

    - policy tick: the whole 50 Hz timer callback (state assembly and checks, observation, ONNX,
      command, /gmt/joint_targets and timing publish); the ``step`` part alone too.
    - tick period deviation: |period - 20 ms| between consecutive tick starts.
    - (a) bridge-internal: a lowstate's arrival in the bridge (its SDK callback, after the SDK's
      CDR decoding) -> the next rt/lowcmd write (end of ``Write``). The writer runs on its own
      fixed 500 Hz schedule and re-sends the latest target, so (a) is the wait for the next writer
      tick (0-2 ms by design) plus its work.
    - (b) end to end: a lowstate's publication by the sim (its ``Write`` call) -> the first
      rt/lowcmd written by the bridge whose target the policy computed from that lowstate. Only
      states a tick actually used count (one in ten at 500/50 Hz). The chain is exact: the policy
      records the header stamp of the /joint_states it used and the stamp of the target it
      published; the bridge republishes each lowstate on /joint_states within the lowstate's own
      callback, and records which target each write carried. Its parts: ``transport_in`` (sim
      publish -> policy has the /joint_states: SDK, bridge, ROS), ``sample_wait`` (-> the next
      tick starts: 0-20 ms by design, the 50 Hz policy sampling a 500 Hz stream), ``pipeline``
      (tick start -> the write carrying its target: compute, publish, ROS, bridge, writer wait),
      and ``processing`` = end to end minus the sample wait (what the software adds).
    - RSS (VmRSS) and CPU share of every node process; the sim's own report (real-time factor,
      overruns, its command latency).

``rtf`` - ``sim2sim.evaluate.run_episode`` (the headless in-process loop of ``gmt-ros eval``)
    with domain randomisation ``--dr`` (default ``hard``: every effect) on ``--rtf-motion`` for
    ``--rtf-seconds`` of sim time: simulated seconds / wall seconds.

The report (``--json``) holds the git commit measured (``git rev-parse HEAD``, plus whether the
working tree differs from it), the machine (CPUs, load average at start and end, versions), the
settings, every figure, and each target with its verdict. Targets (issue 10, idle / loaded): policy
tick in the graph p99 <= 1.5 / 3 ms, lowstate -> lowcmd (a) p99 <= 1 / 2 ms, (b) less the sample
wait p99 <= 2 / 4 ms, bridge <= 15 % of a core and <= 150 MB RSS, policy node <= 100 MB, offline
sim2sim with DR hard >= 6x real time.

``python -m gmt_ros.tools.bench probe {sim,bridge,policy} RECORD_FILE NODE_ARGS...`` is the
recording layer: it runs that node's own ``main()`` with a recorder on the node's explicit
measurement hooks (``BridgeHooks``, ``PolicyHooks``, the sim's ``on_state_write``) and writes the
records (.npz) when the node exits. The graph section starts the nodes through wrapper
scripts that call it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gmt_ros.core.contract import DEFAULT_POLICY

SECTIONS = ("policy", "graph", "rtf")
# The targets of issue 10 (headroom on the robot's computer), idle / one core loaded.
TARGET_TICK_P99_MS = {"idle": 1.5, "loaded": 3.0}        # policy tick in the graph
TARGET_BRIDGE_P99_MS = {"idle": 1.0, "loaded": 2.0}      # (a) lowstate arrival -> lowcmd write
TARGET_PROCESSING_P99_MS = {"idle": 2.0, "loaded": 4.0}  # (b) less the 50 Hz sample wait
TARGET_CPU_PERCENT = {"bridge": 15.0}                     # of one core
TARGET_RSS_MB = {"bridge": 150.0, "policy": 100.0}
TARGET_RTF = 6.0                                          # offline sim2sim with DR hard
WARMUP_STEPS = 100
SETTLE_AFTER_LOAD_S = 1.0  # let the scheduler settle after the busy loop starts
PROBED = ("sim", "bridge", "policy")  # graph nodes started through the recording layer


# ------------------------------------------------------------------------------------------------
# small helpers


def percentiles_ms(samples_s) -> dict:
    """p50 / p90 / p99 / max / mean in milliseconds of samples in seconds (NaN dropped)."""
    a = np.asarray(samples_s, dtype=np.float64).ravel()
    a = a[np.isfinite(a)] * 1e3
    if a.size == 0:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 4),
            "p90": round(float(np.percentile(a, 90)), 4), "p99": round(float(np.percentile(a, 99)), 4),
            "max": round(float(a.max()), 4), "mean": round(float(a.mean()), 4)}


def git_info(repo: Path | None = None) -> dict:
    """The commit measured and whether tracked files differ from it (no lock taken)."""
    repo = repo or Path(__file__).resolve().parents[2]
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


# ------------------------------------------------------------------------------------------------
# section "policy": TrackingPolicy.step in this process


class _Timed:
    """Wraps a callable; ``last`` is the duration (s) of its latest call."""

    def __init__(self, fn):
        self._fn = fn
        self.last = math.nan

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._fn(*args, **kwargs)
        finally:
            self.last = time.perf_counter() - t0

    def __getattr__(self, name):  # the wrapped object's attributes (e.g. OnnxPolicy.session)
        return getattr(self._fn, name)


def walking_window(seconds: float = 4.0, dt: float = 0.02):
    """A synthetic forward walk (closed form): the reference the policy benchmark tracks."""
    from gmt_ros.core import g1
    from gmt_ros.core.frames import MotionFrames, MotionWindow

    n = int(round(seconds / dt))
    t = np.arange(n) * dt
    yaw = 0.2 * t
    quat = np.stack([np.cos(yaw / 2), 0 * t, 0 * t, np.sin(yaw / 2)], axis=1)
    q = np.tile(g1.DEFAULT_POSE, (n, 1))
    q[:, 0] += 0.35 * np.sin(2 * np.pi * t)
    q[:, 6] -= 0.35 * np.sin(2 * np.pi * t)
    frames = MotionFrames(
        root_pos=np.stack([0.5 * t, 0 * t, 0.78 + 0 * t], axis=1), root_quat=quat,
        root_lin_vel=np.stack([0.5 * np.cos(yaw), 0.5 * np.sin(yaw), 0 * t], axis=1),
        root_ang_vel=np.tile([0.0, 0.0, 0.2], (n, 1)), joint_pos=q, joint_vel=np.gradient(q, dt, axis=0),
    )
    return MotionWindow(start_time=0.0, dt=dt, frames=frames, joint_mask=np.ones(g1.NUM_BODY_JOINTS, bool))


def noisy_states(count: int = 64, seed: int = 0):
    """Standing states with joint noise and a tilted IMU, as a real robot reports them."""
    from gmt_ros.core import g1, rotations
    from gmt_ros.core.state import RobotState

    rng = np.random.default_rng(seed)
    return [RobotState(stamp=0.0, joint_pos=g1.DEFAULT_POSE + rng.normal(0, 0.05, g1.NUM_BODY_JOINTS),
                       joint_vel=rng.normal(0, 0.5, g1.NUM_BODY_JOINTS),
                       imu_quat=rotations.from_rpy(rng.normal(0, 0.05, 3)), imu_gyro=rng.normal(0, 0.1, 3))
            for _ in range(count)]


def measure_policy_step(steps: int, contract: str = DEFAULT_POLICY) -> dict:
    """``steps`` policy steps (after a warm-up); each step's total and its parts."""
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.observation import ObservationBuilder
    from gmt_ros.core.policy import TrackingPolicy

    policy = TrackingPolicy(contract)
    window = walking_window()
    states = noisy_states()
    build = policy.observations.build = _Timed(policy.observations.build)
    network = policy.network = _Timed(policy.network)
    command = policy.action_to_command = _Timed(policy.action_to_command)
    ticks = int(round(window.end_time / policy.contract.control_dt)) - 2
    rows = np.empty((steps, 4))
    for i in range(-WARMUP_STEPS, steps):
        state, now = states[i % len(states)], (i % ticks) * policy.contract.control_dt
        window = dataclasses.replace(window)  # a new window object every tick, as at 50 Hz windows
        t0 = time.perf_counter()
        policy.step(state, window, now)
        total = time.perf_counter() - t0
        if i >= 0:
            rows[i] = total, build.last, network.last, command.last
    out = {"step_ms": percentiles_ms(rows[:, 0]), "observation_ms": percentiles_ms(rows[:, 1]),
           "onnx_ms": percentiles_ms(rows[:, 2]), "command_ms": percentiles_ms(rows[:, 3]),
           "checks_ms": percentiles_ms(rows[:, 0] - rows[:, 1:].sum(axis=1))}

    gmt = ObservationBuilder(load_contract("gmt_student"))
    zeros = np.zeros(gmt.contract.action_dim)
    gmt_s = np.empty(steps)
    for i in range(-WARMUP_STEPS, steps):
        t0 = time.perf_counter()
        gmt.build(states[i % len(states)], window, (i % (ticks - 100)) * 0.02, zeros)
        gmt.commit()
        if i >= 0:
            gmt_s[i] = time.perf_counter() - t0
    out["gmt_observation_ms"] = percentiles_ms(gmt_s)
    return out


# ------------------------------------------------------------------------------------------------
# section "rtf": the headless in-process sim2sim loop


def measure_rtf(seconds: float, motion: str, dr: str, seed: int = 0, contract: str = DEFAULT_POLICY) -> dict:
    """Simulated / wall seconds of the episode loop; building the randomised model (MuJoCo
    compile, ≈ 1-2 s, once per episode) is timed apart and reported as ``build_s``."""
    from gmt_ros.core.clip_library import resolve_clip
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.motion import load_clip
    from gmt_ros.core.policy import TrackingPolicy
    from sim2sim.evaluate import make_sim, run_episode

    c = load_contract(contract)
    clip = load_clip(resolve_clip(motion))
    policy = TrackingPolicy(c)
    t0 = time.perf_counter()
    sim = make_sim(seed, dr)
    t1 = time.perf_counter()
    result = run_episode(c, clip, seconds=seconds, seed=seed, sim=sim, policy=policy)
    wall = time.perf_counter() - t1
    # A fall ends the episode early; the simulated time is what ran (ticks plus the fall tick).
    simulated = (result.policy_ticks + (1 if result.fell else 0)) / c.rate_hz
    return {"motion": clip.name, "dr": dr, "seed": seed, "sim_s": round(simulated, 3), "wall_s": round(wall, 3),
            "build_s": round(t1 - t0, 3), "real_time_factor": round(simulated / wall, 3) if wall > 0 else None,
            "real_time_factor_with_build": round(simulated / (wall + t1 - t0), 3), "fell": result.fell}


# ------------------------------------------------------------------------------------------------
# section "graph": records of the probed nodes -> latencies


def _stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _in(t: np.ndarray, span) -> np.ndarray:
    return (t >= span[0]) & (t < span[1])


def analyze_graph(sim: dict, bridge: dict, policy: dict, span: tuple[float, float], dt: float) -> dict:
    """Latency and tick figures over one measurement phase ``span`` (CLOCK_MONOTONIC seconds).

    Records (arrays, one row per event; stamps in ns of the ROS clock, times in s monotonic):
    sim: ``pub_t``, ``pub_tick`` (lowstate Write called, its tick);
    bridge: ``state_t``, ``state_wall``, ``state_tick`` (lowstate callback entry, time.time(),
    tick); ``write_t``, ``write_stamp``, ``write_policy``, ``write_ok`` (end of each writer tick,
    header stamp of the target it carried (0: none or unknown), supervisor in policy mode, a
    lowcmd was written); policy: ``tick_t``, ``tick_s``, ``step_s``, ``published``,
    ``target_stamp``, ``js_stamp``, ``js_t`` (tick start, its duration, the step's, whether a
    target was published and its stamp, the stamp and receipt time of the /joint_states used).
    """
    out: dict = {}
    tick_t = np.asarray(policy["tick_t"])
    in_phase = _in(tick_t, span)
    published = in_phase & np.asarray(policy["published"], bool)
    out["policy_tick_ms"] = percentiles_ms(np.asarray(policy["tick_s"])[published])
    out["policy_step_ms"] = percentiles_ms(np.asarray(policy["step_s"])[published])
    ticks = tick_t[in_phase]
    periods = np.diff(ticks)
    out["tick_period_ms"] = percentiles_ms(periods)
    out["tick_period_deviation_ms"] = percentiles_ms(np.abs(periods - dt))
    out["ticks"] = int(in_phase.sum())
    out["ticks_published"] = int(published.sum())

    # (a) lowstate arrival in the bridge -> the next lowcmd write
    write_t = np.asarray(bridge["write_t"])
    write_ok = np.asarray(bridge["write_ok"], bool)
    written = write_t[write_ok]
    state_t = np.asarray(bridge["state_t"])
    arrivals = state_t[_in(state_t, span)]
    nxt = np.searchsorted(written, arrivals)
    has_next = nxt < written.size
    out["bridge_state_to_write_ms"] = percentiles_ms(written[nxt[has_next]] - arrivals[has_next])

    # (b) sim publish -> the first write carrying a target computed from that state
    state_wall_ns = np.round(np.asarray(bridge["state_wall"]) * 1e9).astype(np.int64)
    state_tick = np.asarray(bridge["state_tick"], np.int64)
    pub_t = np.asarray(sim["pub_t"])
    pub_tick = np.asarray(sim["pub_tick"], np.int64)
    pub_of_tick = dict(zip(pub_tick.tolist(), pub_t.tolist()))  # a tick is published once
    stamps = np.asarray(bridge["write_stamp"], np.int64)
    carrying = write_ok & np.asarray(bridge["write_policy"], bool) & (stamps > 0)
    first_write: dict[int, float] = {}
    for stamp, t in zip(stamps[carrying].tolist(), write_t[carrying].tolist()):
        first_write.setdefault(stamp, t)
    rows, missing = [], {"js_unknown": 0, "state_unknown": 0, "not_written": 0}
    for k in np.flatnonzero(published):
        js_stamp, js_t = int(policy["js_stamp"][k]), float(policy["js_t"][k])
        if js_stamp <= 0 or not math.isfinite(js_t):
            missing["js_unknown"] += 1
            continue
        # The /joint_states stamp is taken inside the lowstate's callback: the latest arrival before it.
        i = int(np.searchsorted(state_wall_ns, js_stamp, side="right")) - 1
        publish_t = pub_of_tick.get(int(state_tick[i])) if i >= 0 else None
        if publish_t is None:
            missing["state_unknown"] += 1
            continue
        write = first_write.get(int(policy["target_stamp"][k]))
        if write is None:
            missing["not_written"] += 1
            continue
        rows.append((publish_t, state_t[i], js_t, tick_t[k], write))
    r = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    publish_t, arrival_t, js_t, start_t, write = r.T
    out["e2e_state_to_write_ms"] = percentiles_ms(write - publish_t)
    out["e2e_parts_ms"] = {
        "sdk_state": percentiles_ms(arrival_t - publish_t),
        "transport_in": percentiles_ms(js_t - publish_t),
        "sample_wait": percentiles_ms(start_t - js_t),
        "pipeline": percentiles_ms(write - start_t),
        "processing": percentiles_ms((write - publish_t) - (start_t - js_t)),
    }
    out["e2e_unmatched_ticks"] = missing
    return out


# ------------------------------------------------------------------------------------------------
# the recording layer (runs inside the node processes)


class _Records:
    """Rows appended from callbacks (list.append is atomic under the GIL), saved at exit.
    Columns named ``*_stamp`` / ``*_tick`` are integers (ROS stamps in ns do not fit a float64)."""

    def __init__(self, path: str, columns: dict[str, tuple[str, ...]]):
        self.path = path
        self.columns = columns
        self.rows: dict[str, list] = {name: [] for name in columns}

    def save(self) -> None:
        arrays = {}
        for table, cols in self.columns.items():
            rows = self.rows[table]
            for j, col in enumerate(cols):
                dtype = np.int64 if col.endswith(("_stamp", "_tick")) else np.float64
                arrays[col] = np.array([row[j] for row in rows], dtype=dtype)
        tmp = self.path + ".tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, self.path)


def _probe_sim(records: _Records, argv: list[str]) -> int:
    from sim2sim import node

    rows = records.rows["pub"]
    return node.main(argv, on_state_write=lambda tick: rows.append((time.monotonic(), tick)))


def _probe_bridge(records: _Records, argv: list[str]) -> int:
    from gmt_ros.nodes import bridge_node

    states, writes = records.rows["state"], records.rows["write"]

    class Recorder(bridge_node.BridgeHooks):
        def state_received(self, t, wall, tick):
            states.append((t, wall, tick))

        def command_written(self, t, target_stamp_ns, policy_mode, written):
            writes.append((t, target_stamp_ns, policy_mode, written))

    return bridge_node.main(["gmt-ros-bridge", *argv], hooks=Recorder())  # rclpy reads argv[0] as the program


def _probe_policy(records: _Records, argv: list[str]) -> int:
    from gmt_ros.nodes import policy_node

    ticks = records.rows["tick"]

    class Recorder(policy_node.PolicyHooks):
        def tick(self, t, duration_s, step_s, target_stamp_ns, state_stamp_ns, state_received):
            ticks.append((t, duration_s, step_s, target_stamp_ns > 0, target_stamp_ns, state_stamp_ns, state_received))

    return policy_node.main(["gmt-ros-policy", *argv], hooks=Recorder())


_PROBES = {
    "sim": (_probe_sim, {"pub": ("pub_t", "pub_tick")}),
    "bridge": (_probe_bridge, {"state": ("state_t", "state_wall", "state_tick"),
                               "write": ("write_t", "write_stamp", "write_policy", "write_ok")}),
    "policy": (_probe_policy, {"tick": ("tick_t", "tick_s", "step_s", "published", "target_stamp", "js_stamp",
                                        "js_t")}),
}


def probe_main(argv: list[str]) -> int:
    """``probe NODE RECORD_FILE NODE_ARGS...``: run a node with its recording layer."""
    if len(argv) < 3 or argv[0] != "probe" or argv[1] not in _PROBES:
        print(f"usage: python -m gmt_ros.tools.bench probe {{{','.join(_PROBES)}}} RECORD_FILE NODE_ARGS...",
              file=sys.stderr)
        return 2
    run, columns = _PROBES[argv[1]]
    records = _Records(argv[2], columns)
    import atexit

    atexit.register(records.save)  # after the node's own shutdown (it returns from main first)
    return run(records, argv[3:])


def _write_wrappers(bin_dir: Path, record_dir: Path) -> None:
    """Executables named like the graph's console scripts: the probed nodes run through
    ``probe``, the others are the installed scripts (or ``python -m``, process_graph's fallback)."""
    from gmt_ros import graph

    bin_dir.mkdir(parents=True, exist_ok=True)
    for spec in graph.GRAPHS["sim2sim"]:
        target = bin_dir / spec.executable
        if spec.key in PROBED:
            record = record_dir / f"{spec.key}.npz"
            target.write_text(f"#!/bin/sh\nexec {sys.executable} -m gmt_ros.tools.bench probe {spec.key} "
                              f"{record} \"$@\"\n")
            target.chmod(0o755)
        else:
            installed = Path(sys.executable).parent / spec.executable
            if installed.is_file():
                target.symlink_to(installed)


def _load_records(path: Path) -> dict:
    if not path.is_file():
        raise RuntimeError(f"no records from {path.stem} ({path}): the node did not exit cleanly")
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def measure_graph(seconds: float, load: bool, pin: bool, work_dir: Path, motion: str = "gmt/walk_stand",
                  node_settings: dict[str, dict[str, str]] | None = None, launch_settings: bool = False,
                  nice: int = 0) -> dict:
    """Start the sim2sim graph (probed), measure ``seconds`` idle then ``seconds`` loaded.

    Node settings are ``gmt-ros sim2sim``'s: its lighter settings (which fit a 2-core machine)
    unless ``launch_settings``; ``node_settings`` adds or overrides per node key (experiments)."""
    from gmt_ros.core.contract import load_contract
    from gmt_ros.tools.sim2sim_run import STOP_ORDER, Sim2SimOptions, Sim2SimSession, other_node_processes

    record_dir = work_dir / "records"
    record_dir.mkdir(parents=True, exist_ok=True)
    _write_wrappers(work_dir / "bin", record_dir)
    dt = load_contract(DEFAULT_POLICY).control_dt
    pid = os.getpid()
    options = Sim2SimOptions(motion=motion, domain=101 + pid % 100, ros_domain=1 + pid % 100,
                             log_dir=work_dir / "logs", node_settings=dict(node_settings or {}),
                             launch_settings=launch_settings, nice=nice)
    spans: dict[str, tuple[float, float]] = {}
    session = Sim2SimSession(options)
    session.graph.bin_dir = work_dir / "bin"
    info: dict = {"ros_domain": options.ros_domain, "dds_domain": options.domain, "nice": nice,
                  "settings": "launch file" if launch_settings else "gmt-ros sim2sim lighter settings",
                  "overrides": session.overrides, "node_settings": options.node_settings,
                  "other_graphs_at_start": other_node_processes(), "phases": {}}
    try:
        t_start = time.monotonic()
        session.start()
        info["start_up_s"] = round(time.monotonic() - t_start, 1)
        for name in ("idle", "loaded") if load else ("idle",):
            with (busy_load(pin) if name == "loaded" else contextlib.nullcontext(None)) as busy:
                if busy is not None:
                    time.sleep(SETTLE_AFTER_LOAD_S)
                cpu0 = session.graph.cpu_seconds()
                t0 = time.monotonic()
                while time.monotonic() - t0 < seconds:
                    time.sleep(0.2)
                    session.graph.check_alive()
                t1 = time.monotonic()
                cpu1 = session.graph.cpu_seconds()
                spans[name] = (t0, t1)
                state = session.supervisor_state() or {}
                own = {p.pid for p in session.graph.processes.values()} | ({busy["pid"]} if busy else set())
                info["phases"][name] = {
                    "seconds": round(t1 - t0, 2), "busy_load": busy,
                    "other_graphs": other_node_processes(own),
                    "load_average_1min": round(os.getloadavg()[0], 2),
                    "supervisor_mode_at_end": state.get("mode"), "fault": state.get("fault"),
                    "rss_mb": {k: rss_mb(p.pid) for k, p in session.graph.processes.items()},
                    "cpu_percent": {k: (round(100 * (cpu1[k] - cpu0[k]) / (t1 - t0), 1)
                                        if cpu0.get(k) is not None and cpu1.get(k) is not None else None)
                                    for k in cpu1},
                }
    finally:
        session.exit_codes = session.graph.stop_all(order=STOP_ORDER)
        session.close()
    info["exit_codes"] = session.exit_codes
    records = {key: _load_records(record_dir / f"{key}.npz") for key in PROBED}
    for name, span in spans.items():
        info["phases"][name].update(analyze_graph(records["sim"], records["bridge"], records["policy"], span, dt))
    try:
        sim_report = json.loads(session.report_path.read_text())
        info["sim_report"] = {k: sim_report.get(k) for k in ("real_time_factor", "pacing", "state_to_command_latency_ms",
                                                              "lowcmd", "lowstate")}
    except (OSError, ValueError) as exc:
        info["sim_report"] = {"error": str(exc)}
    return info


# ------------------------------------------------------------------------------------------------
# the command


def _targets(report: dict) -> list[dict]:
    out = []

    def add(name, target, value, ok):
        out.append({"name": name, "target": target, "value": value, "met": None if value is None else ok})

    def at_most(name, limit, value, unit):
        add(name, f"<= {limit:g} {unit}", value, value is not None and value <= limit)

    graph = report.get("graph", {}).get("phases", {})  # absent when the graph could not run
    for phase, fig in graph.items():
        tick = TARGET_TICK_P99_MS.get(phase, TARGET_TICK_P99_MS["loaded"])
        at_most(f"policy tick p99 ({phase}, node)", tick, fig["policy_tick_ms"]["p99"], "ms")
        at_most(f"lowstate arrival -> lowcmd write p99 (a) bridge ({phase})",
                TARGET_BRIDGE_P99_MS.get(phase, TARGET_BRIDGE_P99_MS["loaded"]), fig["bridge_state_to_write_ms"]["p99"], "ms")
        at_most(f"(b) minus the 50 Hz sample wait p99 ({phase})",
                TARGET_PROCESSING_P99_MS.get(phase, TARGET_PROCESSING_P99_MS["loaded"]),
                fig["e2e_parts_ms"]["processing"]["p99"], "ms")
        for node, limit in TARGET_CPU_PERCENT.items():
            at_most(f"{node} CPU ({phase})", limit, fig["cpu_percent"].get(node), "% of a core")
        for node, limit in TARGET_RSS_MB.items():
            at_most(f"{node} RSS ({phase})", limit, fig["rss_mb"].get(node), "MB")
    for phase, fig in report.get("policy", {}).items():
        at_most(f"policy step p99 ({phase}, in-process)", TARGET_TICK_P99_MS.get(phase, TARGET_TICK_P99_MS["loaded"]),
                fig["step_ms"]["p99"], "ms")
    for phase, fig in report.get("rtf", {}).items():
        rtf = fig["real_time_factor"]
        add(f"sim2sim real-time factor, DR {fig['dr']} ({phase})", f">= {TARGET_RTF}x", rtf,
            rtf is not None and rtf >= TARGET_RTF)
    return out


def _fmt(p: dict) -> str:
    if not p or p.get("n", 0) == 0:
        return "n/a"
    return f"p50 {p['p50']:.3f}  p99 {p['p99']:.3f}  max {p['max']:.3f} ms (n={p['n']})"


def _print_summary(report: dict) -> None:
    for phase, fig in report.get("policy", {}).items():
        print(f"[policy/{phase}] step        {_fmt(fig['step_ms'])}")
        for key in ("observation_ms", "onnx_ms", "command_ms", "checks_ms", "gmt_observation_ms"):
            print(f"[policy/{phase}]   {key[:-3]:<10}{_fmt(fig[key])}")
    for phase, fig in report.get("graph", {}).get("phases", {}).items():
        print(f"[graph/{phase}] policy tick  {_fmt(fig['policy_tick_ms'])}")
        print(f"[graph/{phase}]   step       {_fmt(fig['policy_step_ms'])}")
        print(f"[graph/{phase}] |period-20ms| {_fmt(fig['tick_period_deviation_ms'])}")
        print(f"[graph/{phase}] (a) state->write (bridge)   {_fmt(fig['bridge_state_to_write_ms'])}")
        print(f"[graph/{phase}] (b) state->write (e2e)      {_fmt(fig['e2e_state_to_write_ms'])}")
        for part, p in fig["e2e_parts_ms"].items():
            print(f"[graph/{phase}]     {part:<13}{_fmt(p)}")
        print(f"[graph/{phase}] RSS MB {fig['rss_mb']}  CPU % {fig['cpu_percent']}")
    for phase, fig in report.get("rtf", {}).items():
        print(f"[rtf/{phase}] {fig['motion']} DR {fig['dr']}: {fig['sim_s']} s simulated in {fig['wall_s']} s "
              f"= {fig['real_time_factor']}x real time{' (fell)' if fig['fell'] else ''}; model build "
              f"{fig['build_s']} s ({fig['real_time_factor_with_build']}x with it)")
    for t in report.get("targets", []):
        verdict = {True: "MET", False: "MISSED", None: "n/a"}[t["met"]]
        print(f"target {t['name']}: {t['value']} (target {t['target']}) {verdict}")


def run_bench(args) -> dict:
    from gmt_ros.tools import UsageError

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        raise UsageError(f"--sections: unknown {unknown or 'empty'}; choose from {', '.join(SECTIONS)}")
    for name in ("steps",):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("graph_seconds", "rtf_seconds"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")
    node_settings: dict[str, dict[str, str]] = {}
    for item in args.node_param:
        key, dot, rest = item.partition(".")
        name, eq, value = rest.partition("=")
        if not dot or not eq or not key.strip() or not name.strip():
            raise UsageError(f"--node-param must be NODE.NAME=VALUE (e.g. bridge.state_publish_rate_hz=500), "
                             f"got {item!r}")
        node_settings.setdefault(key.strip(), {})[name.strip()] = value.strip()
    started = time.time()
    report: dict = {
        "schema": 1, "started_unix": round(started, 3), "git": git_info(), "machine": machine_info(),
        "settings": {"sections": sections, "steps": args.steps, "graph_seconds": args.graph_seconds,
                     "rtf_seconds": args.rtf_seconds, "rtf_motion": args.rtf_motion, "dr": args.dr,
                     "load": not args.no_load, "load_pinned": not args.no_load_pin},
    }
    phases = ("idle", "loaded") if not args.no_load else ("idle",)

    def phased(fn):
        out = {}
        for phase in phases:
            with (busy_load(not args.no_load_pin) if phase == "loaded" else contextlib.nullcontext(None)) as busy:
                if busy is not None:
                    time.sleep(SETTLE_AFTER_LOAD_S)
                out[phase] = fn() | {"load_average_1min": round(os.getloadavg()[0], 2)}
        return out

    if "policy" in sections:
        print(f"policy step: {args.steps} steps per phase ({', '.join(phases)})", flush=True)
        report["policy"] = phased(lambda: measure_policy_step(args.steps))
    if "rtf" in sections:
        print(f"sim2sim real-time factor: {args.rtf_seconds} s of {args.rtf_motion}, DR {args.dr}", flush=True)
        report["rtf"] = phased(lambda: measure_rtf(args.rtf_seconds, args.rtf_motion, args.dr))
    if "graph" in sections:
        print(f"node graph: start-up, then {args.graph_seconds} s per phase ({', '.join(phases)})", flush=True)
        work = Path(args.keep_logs) if args.keep_logs else Path(tempfile.mkdtemp(prefix="gmt_bench_"))
        try:
            report["graph"] = measure_graph(args.graph_seconds, not args.no_load, not args.no_load_pin, work,
                                            node_settings=node_settings, launch_settings=args.launch_settings,
                                            nice=args.nice)
        except (RuntimeError, OSError) as exc:  # the graph did not run (node died, supervisor fault, ...)
            report["graph"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"node graph: not measured: {report['graph']['error']}", file=sys.stderr)
        finally:
            if not args.keep_logs:
                import shutil

                shutil.rmtree(work, ignore_errors=True)
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["duration_s"] = round(time.time() - started, 1)
    report["targets"] = _targets(report)
    return report


def cmd_bench(args) -> int:
    report = run_bench(args)
    _print_summary(report)
    g = report["git"]
    print(f"commit {g.get('commit')}{' (dirty)' if g.get('dirty') else ''}; {report['machine']['nproc']} CPUs, "
          f"load average at start {report['machine']['load_average_start']}; {report['duration_s']} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="performance: policy step/tick, latencies through the nodes, RSS, "
                                            "sim2sim real-time factor")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--steps", type=int, default=3000, help="policy steps per phase (default 3000)")
    p.add_argument("--graph-seconds", type=float, default=30.0, help="graph measurement per phase (default 30 s)")
    p.add_argument("--rtf-seconds", type=float, default=20.0, help="simulated seconds per phase (default 20)")
    p.add_argument("--rtf-motion", default="gmt/walk_stand", help="clip of the real-time-factor run")
    p.add_argument("--dr", default="hard", help="randomisation preset of the real-time-factor run (default hard)")
    p.add_argument("--no-load", action="store_true", help="idle phase only")
    p.add_argument("--no-load-pin", action="store_true", help="do not pin the busy loop to the last CPU")
    p.add_argument("--launch-settings", action="store_true",
                   help="graph: exactly the launch file's node settings (default: gmt-ros sim2sim's lighter ones)")
    p.add_argument("--node-param", action="append", default=[], metavar="NODE.NAME=VALUE",
                   help="graph: a node setting on top (experiments), e.g. bridge.state_publish_rate_hz=500")
    p.add_argument("--nice", type=int, default=0, help="graph: the nodes' nice value (negative needs root)")
    p.add_argument("--keep-logs", metavar="DIR", help="keep the graph's logs and records here")
    p.set_defaults(func=cmd_bench)


if __name__ == "__main__":
    sys.exit(probe_main(sys.argv[1:]))
