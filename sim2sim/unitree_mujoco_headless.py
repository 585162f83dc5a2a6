"""Unitree's own simulator (unitreerobotics/unitree_mujoco, ``simulate_python``) without its viewer.

    python -m sim2sim.unitree_mujoco_headless --archive ../shared/vendor/unitree_mujoco/unitree_mujoco-c598f10.tar.gz
        [--simulate-dt 0.005] [--domain 1] [--band-length 0.5] [--seconds S] [--report OUT.json]

Its ``unitree_sdk2py_bridge.py`` is imported unchanged (rt/lowstate every SIMULATE_DT, the
LowCmd_ handler that sets ``ctrl = tau + kp (q - q_sensor) + kd (dq - dq_sensor)`` once per
command, no CRC, mode_machine 0) with a ``config`` module holding what a user writes in its
``config.py`` (ROBOT "g1", the 29-DoF scene, DOMAIN_ID, INTERFACE "lo", USE_JOYSTICK 0,
ENABLE_ELASTIC_BAND 1, SIMULATE_DT). What replaces ``unitree_mujoco.py`` is this main loop: the
same physics step under the same lock, paced to SIMULATE_DT, with its ``ElasticBand`` on the
torso. Without the viewer nobody presses its keys, so:

- the band's length starts at ``--band-length`` (its key 8 adds 0.1 per press: 0.5 = five
  presses, the feet just on the floor);
- the band is switched off (its key 9) when an operator asks on ``rt/gmt/sim/gantry``
  (``sim2sim.gantry_link``: ``gmt-ros operate engage --release-gantry``), not by a clock;
- ``xfrc_applied`` is cleared every step (the viewer's sync does that; without it the band's
  last force would stay on after the release).

It writes a JSON report: SIMULATE_DT, steps, real-time factor, and from the band's release on the
pelvis height (min), tilt (max), whether it fell (``sim2sim.metrics.has_fallen``), and how often
the torques the bridge asked for reached the actuators' ``ctrlrange`` (saturation) per joint group.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import tarfile
import tempfile
import threading
import time
import types
from pathlib import Path

import numpy as np

GROUPS = {"legs": range(0, 12), "waist": range(12, 15), "arms": range(15, 29)}


def extract(archive: Path, dest: Path) -> Path:
    """The archive's ``unitree_mujoco`` folder under ``dest`` (extracted once)."""
    root = dest / "unitree_mujoco"
    if not (root / "simulate_python" / "unitree_sdk2py_bridge.py").is_file():
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    return root


def config_module(root: Path, simulate_dt: float, domain: int, interface: str) -> types.ModuleType:
    """What the user edits in simulate_python/config.py, for the G1 29-DoF, headless."""
    cfg = types.ModuleType("config")
    cfg.ROBOT = "g1"
    cfg.ROBOT_SCENE = str(root / "unitree_robots" / "g1" / "scene_29dof.xml")
    cfg.DOMAIN_ID = domain
    cfg.INTERFACE = interface
    cfg.USE_JOYSTICK = 0
    cfg.JOYSTICK_TYPE = "xbox"
    cfg.JOYSTICK_DEVICE = 0
    cfg.PRINT_SCENE_INFORMATION = False
    cfg.ENABLE_ELASTIC_BAND = True
    cfg.SIMULATE_DT = simulate_dt
    cfg.VIEWER_DT = 0.02
    return cfg


class HeadlessUnitreeMujoco:
    def __init__(self, root: Path, simulate_dt: float = 0.005, domain: int = 1, interface: str = "lo",
                 band_length: float = 0.5):
        import mujoco

        from gmt_ros.adapters import dds

        self.config = config_module(root, simulate_dt, domain, interface)
        sys.modules["config"] = self.config
        sys.path.insert(0, str(root / "simulate_python"))
        import unitree_sdk2py_bridge as upstream  # unchanged

        self.upstream = upstream
        self.model = mujoco.MjModel.from_xml_path(self.config.ROBOT_SCENE)
        self.data = mujoco.MjData(self.model)
        self.model.opt.timestep = simulate_dt  # as unitree_mujoco.py does, before the bridge reads it
        self.band = upstream.ElasticBand()
        self.band.length = band_length
        self.torso = self.model.body("torso_link").id
        self.lock = threading.Lock()
        dds.init_channel_factory(domain, interface)  # ChannelFactoryInitialize(DOMAIN_ID, INTERFACE), checked
        self.bridge = upstream.UnitreeSdk2Bridge(self.model, self.data)
        from sim2sim.gantry_link import GantryServer

        self.gantry = GantryServer()
        self.ctrl_hi = np.abs(self.model.actuator_ctrlrange[:, 1]).copy()
        self.stop_requested = False
        self.steps = 0
        self.release_step: int | None = None
        self.stats = {"min_pelvis_m": math.inf, "max_tilt_rad": 0.0, "fell": False, "fall_time_s": None,
                      "saturated_steps": {g: 0 for g in GROUPS}, "steps_after_release": 0}

    def step(self) -> None:
        import mujoco

        with self.lock:
            self.data.xfrc_applied[:] = 0.0  # what the viewer's sync leaves: no stale force
            if self.band.enable and self.gantry.requested.is_set():
                self.band.enable = False  # key 9
                self.release_step = self.steps
            if self.band.enable:
                self.data.xfrc_applied[self.torso, :3] = self.band.Advance(self.data.qpos[:3], self.data.qvel[:3])
            mujoco.mj_step(self.model, self.data)
            self.steps += 1
            if self.release_step is not None:
                self._measure()
        self.gantry.publish("held" if self.band.enable else "released")

    def _measure(self) -> None:
        from sim2sim import metrics

        s = self.stats
        s["steps_after_release"] += 1
        z = float(self.data.qpos[2])
        w, x, y, zq = (float(v) for v in self.data.qpos[3:7])
        roll = math.atan2(2 * (w * x + y * zq), 1 - 2 * (x * x + y * y))
        pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - zq * x))))
        s["min_pelvis_m"] = min(s["min_pelvis_m"], z)
        s["max_tilt_rad"] = max(s["max_tilt_rad"], abs(roll), abs(pitch))
        if not s["fell"] and metrics.has_fallen(z, roll, pitch):
            s["fell"], s["fall_time_s"] = True, round((self.steps - self.release_step) * self.model.opt.timestep, 3)
        at_limit = np.abs(self.data.ctrl) >= self.ctrl_hi - 1e-9
        for group, idx in GROUPS.items():
            s["saturated_steps"][group] += int(at_limit[list(idx)].any())

    def run(self, seconds: float | None = None) -> None:
        dt = self.model.opt.timestep
        start = time.perf_counter()
        while not self.stop_requested and (seconds is None or self.steps * dt < seconds):
            self.step()
            delay = start + self.steps * dt - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        self.wall_s = time.perf_counter() - start

    def report(self) -> dict:
        s = self.stats
        dt = self.model.opt.timestep
        after = max(s["steps_after_release"], 1)
        return {
            "simulator": "unitree_mujoco simulate_python (unitree_sdk2py_bridge.py unchanged, headless main loop)",
            "simulate_dt": dt, "lowstate_hz_nominal": round(1.0 / dt, 1), "steps": self.steps,
            "sim_time_s": round(self.steps * dt, 3), "real_time_factor": round(self.steps * dt / self.wall_s, 3)
            if getattr(self, "wall_s", 0) else None,
            "band": {"length_m": self.band.length, "released": self.release_step is not None,
                     "released_at_s": None if self.release_step is None else round(self.release_step * dt, 3)},
            "after_release": {
                "seconds": round(s["steps_after_release"] * dt, 3),
                "min_pelvis_height_m": None if math.isinf(s["min_pelvis_m"]) else round(s["min_pelvis_m"], 4),
                "max_tilt_rad": round(s["max_tilt_rad"], 4), "fell": s["fell"], "fall_time_s": s["fall_time_s"],
                "torque_saturation_share": {g: round(n / after, 4) for g, n in s["saturated_steps"].items()},
            },
        }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim2sim.unitree_mujoco_headless", description=__doc__.split("\n\n")[0])
    p.add_argument("--archive", required=True, help="unitree_mujoco-<commit>.tar.gz (../shared/vendor/unitree_mujoco/)")
    p.add_argument("--workdir", help="extract here (default: a temporary directory)")
    p.add_argument("--simulate-dt", type=float, default=0.005, help="its config.py SIMULATE_DT (default 0.005)")
    p.add_argument("--domain", type=int, default=1, help="its config.py DOMAIN_ID (default 1)")
    p.add_argument("--interface", default="lo", help="its config.py INTERFACE (loopback only)")
    p.add_argument("--band-length", type=float, default=0.5, help="elastic band length at start (m; key 8 = +0.1)")
    p.add_argument("--seconds", type=float, help="stop after this much sim time (default: until SIGINT/SIGTERM)")
    p.add_argument("--report", help="write the JSON report here on exit")
    args = p.parse_args(argv)
    if args.interface != "lo":
        print("unitree_mujoco_headless: error: loopback only (interface 'lo')", file=sys.stderr)
        return 2
    sim = None

    def on_signal(_signum, _frame):
        if sim is not None:
            sim.stop_requested = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="unitree_mujoco_"))
    root = extract(Path(args.archive), work)
    sim = HeadlessUnitreeMujoco(root, args.simulate_dt, args.domain, args.interface, args.band_length)
    print(f"unitree_mujoco (headless): G1 29-DoF, SIMULATE_DT {args.simulate_dt}, domain {args.domain} on lo, band "
          f"length {args.band_length} m until released on rt/gmt/sim/gantry", flush=True)
    sim.run(args.seconds)
    report = sim.report()
    print(json.dumps(report), flush=True)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.flush()
    import os

    os._exit(0)  # the SDK's reader threads (its bridge's and ours): no DDS teardown, as the bridge node


if __name__ == "__main__":
    sys.exit(main())
