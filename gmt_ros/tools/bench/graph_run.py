"""Section "graph", the run: the sim2sim node graph as separate processes (the probed ones through
the recording layer), measured idle and with one core loaded: RSS and CPU share of every node,
the records analysed by ``graph_latency``, the sim's own report."""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.tools.bench.environment import busy_load, rss_mb
from gmt_ros.tools.bench.graph_latency import analyze_graph
from gmt_ros.tools.bench.probes import PROBED, load_records, write_wrappers

SETTLE_AFTER_LOAD_S = 1.0  # let the scheduler settle after the busy loop starts


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
    write_wrappers(work_dir / "bin", record_dir)
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
    records = {key: load_records(record_dir / f"{key}.npz") for key in PROBED}
    for name, span in spans.items():
        info["phases"][name].update(analyze_graph(records["sim"], records["bridge"], records["policy"], span, dt))
    try:
        sim_report = json.loads(session.report_path.read_text())
        info["sim_report"] = {k: sim_report.get(k) for k in ("real_time_factor", "pacing", "state_to_command_latency_ms",
                                                              "lowcmd", "lowstate")}
    except (OSError, ValueError) as exc:
        info["sim_report"] = {"error": str(exc)}
    return info
