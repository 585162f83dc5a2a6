"""The recording layer, run inside the node processes of the graph section: the node's own
``main()`` with a recorder on its explicit measurement hooks, the records saved (.npz) at exit; and
the wrapper scripts that start the probed nodes through it."""
from __future__ import annotations

import atexit
import os
import sys
import time
from pathlib import Path

import numpy as np

PROBED = ("sim", "bridge", "policy")  # graph nodes started through the recording layer


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
    atexit.register(records.save)  # after the node's own shutdown (it returns from main first)
    return run(records, argv[3:])


def write_wrappers(bin_dir: Path, record_dir: Path) -> None:
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


def load_records(path: Path) -> dict:
    if not path.is_file():
        raise RuntimeError(f"no records from {path.stem} ({path}): the node did not exit cleanly")
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
