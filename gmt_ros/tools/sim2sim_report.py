"""The report of one node-graph run (``gmt_ros.tools.sim2sim_run.Sim2SimSession.finish``): tracking
errors against the recorded reference, the sim's own figures, the supervisor's modes, the nodes'
timing and CPU, and the source's section (stream, planner); ``summary_line`` for a terminal.
"""
from __future__ import annotations

import json
import math
import time

import numpy as np

from gmt_ros.tools.process_graph import tail

GRAPH = "sim2sim"
# Below this real-time factor (or with backlog dropped) the sim's physics ran slower than the wall
# clock the policy, the player and the bridge run on: the closed loop is not the real one.
MIN_REAL_TIME_FACTOR = 0.97


def build_report(session, supervisor, final_state, targets, windows, player, diagnostics) -> dict:
    """The run's report (see ``sim2sim_run``'s docstring: Measurements) once its processes stopped."""
    from sim2sim.trace import ReferenceSamples, SimTrace, tracking_errors

    rel = session._rel
    sim = json.loads(session.report_path.read_text()) if session.report_path.is_file() else None
    trace = SimTrace.load(session.trace_path) if session.trace_path.is_file() else None
    if sim is None or trace is None:
        raise session._fail(f"the sim wrote no {'report' if sim is None else 'trace'}; its log:\n"
                         f"{tail(session.graph.processes['sim'].log_path)}")
    release = trace.release_unix_time()
    out: dict = {"clip": session.clip_name, "policy": session.contract.name, "graph": GRAPH}
    t0, t1 = session.play_start, session.play_end
    if t0 is not None and t1 is not None and windows:
        reference = ReferenceSamples.from_samples(windows)
        policy_mask = np.zeros(29, dtype=bool)
        policy_mask[np.asarray(session.contract.slots)] = True
        err = tracking_errors(trace, reference, policy_mask, t0, t1)
        if session.opt.log_dir is not None:
            reference.save(session.log_dir / "reference.npz")
        fall_time = err["fall_unix_time"]
        duration = (fall_time if fall_time is not None else t1) - t0
        n_targets = int(np.count_nonzero((targets >= t0) & (targets <= t1)))
        out.update({
            "fell": err["fell"], "fall_time_s": None if fall_time is None else round(fall_time - t0, 3),
            "duration_s": round(duration, 3), "requested_s": round(session.scored_s, 3),
            # Played to its end with the supervisor in policy mode, and upright.
            "completed": session.ended_early_by is None and not err["fell"],
            "ended_early_by": session.ended_early_by,
            "e_mpjpe_rad": _r(err["e_mpjpe_rad"], 5), "e_mpkpe_mm": _r(err["e_mpkpe_mm"], 3),
            "e_vel_mps": _r(err["e_vel_mps"], 5), "e_yaw_vel_radps": _r(err["e_yaw_vel_radps"], 5),
            "min_pelvis_height_m": _r(err["min_pelvis_height_m"], 4), "max_tilt_rad": _r(err["max_tilt_rad"], 4),
            "scored_rows": err["ticks"], "unmatched_rows": err["unmatched"],
            "policy_hz": round(n_targets / (t1 - t0), 2) if t1 > t0 else None,
        })
    else:
        out.update({"fell": None, "completed": False, "ended_early_by": session.ended_early_by, "duration_s": 0.0,
                    "policy_hz": None})
    rtf, skipped = sim["real_time_factor"] or 0.0, sim["pacing"]["skipped_s"]
    out["sim_real_time"] = rtf >= MIN_REAL_TIME_FACTOR and skipped < 0.05
    if not out["sim_real_time"]:
        session.notes.append(f"the sim ran at {rtf:.2f}x real time and dropped {skipped:.2f} s of backlog (CPU "
                          f"overloaded): the closed loop was slower than the real one; tracking results are "
                          f"not representative")
    policy_diag = diagnostics.get("gmt_policy")
    lowcmd = sim["lowcmd"]
    modes = [{"t": rel(t), "mode": s.get("mode"), "fault": s.get("fault")} for t, s in supervisor
             if session.stop_time is None or t <= session.stop_time]
    out.update({
        "lowcmd_hz": lowcmd["rate_hz"], "lowcmd_received": lowcmd["received"], "lowcmd_accepted": lowcmd["accepted"],
        "bad_crc": lowcmd["bad_crc"], "mode_machine_mismatch": lowcmd["mode_machine_mismatch"],
        "invalid_lowcmd": lowcmd["invalid"], "lowcmd_max_gap_s": lowcmd["max_gap_s"],
        "latency_ms": sim["state_to_command_latency_ms"],
        "sim": {"real_time_factor": sim["real_time_factor"], "overruns": sim["pacing"]["overruns"],
                "max_lag_ms": sim["pacing"]["max_lag_ms"], "skipped_s": sim["pacing"]["skipped_s"],
                "lowstate_hz": sim["lowstate"]["rate_hz"], "fell_any_time": sim["robot"]["fell"],
                "sim_time_s": sim["sim_time_s"]},
        "node_timing": session.timing,
        "policy_diagnostics": None if policy_diag is None else {
            k: policy_diag[2].get(k) for k in ("ticks_per_s", "published_per_s", "period_ms_p99", "step_ms_p99",
                                               "rejected_windows")},
        "supervisor": {
            "modes": modes, "fault": final_state.get("fault") if final_state else None,
            "policy_at_s": rel(session.policy_time), "aborted": session.aborted,
            "gantry_release_at_s": rel(release),
            "policy_before_release": (session.policy_time is not None and release is not None
                                      and session.policy_time < release
                                      and trace.kind_at(release) == 3),
            "hold_start_s": session.hold_s, "ramp_time_s": session.opt.ramp_time_s,
        },
        "player": {"play_start_s": rel(session.play_start), "play_end_s": rel(session.play_end),
                   "states": _state_changes(player, rel)},
        "reference_samples": len(windows), "window_parser": session.observer.window_parser if session.observer else None,
        "exit_codes": session.exit_codes,
        "stopped_by": {k: p.stop_signal for k, p in session.graph.processes.items()},
        "logs": {k: str(p.log_path) for k, p in session.graph.processes.items()},
        "sim_report": str(session.report_path), "sim_trace": str(session.trace_path),
        "settings_beyond_launch_file": session.graph.extra,
        "ros_domain": session.ros_domain, "dds_domain": session.opt.domain, "interface": session.opt.interface,
        "wall_time_s": round(time.time() - session.t0, 2), "machine": session.cpu, "notes": session.notes,
    })
    from gmt_ros.tools import stream_run

    out["source"] = session.opt.source
    if session.opt.motion is not None:
        out["vs_clip"] = stream_run.clip_errors(session, trace)
    if session.source_key == "stream":
        out["stream"] = stream_run.stream_report(session, trace)
    if session.script is not None:
        from gmt_ros.tools.planner_run import velocity_section

        out.update(velocity_section(session, trace, windows))
    if session._temp_logs:  # removed at close(): do not point at them
        out["logs"] = out["sim_report"] = out["sim_trace"] = None
    return out


# Worst value per second reported in the nodes' /diagnostics between the link and the stop:
# (node, key, "max" or "min").
_TIMING_KEYS = (("gmt_policy", "period_ms_max", "max"), ("gmt_policy", "step_ms_max", "max"),
                ("gmt_policy", "ticks_per_s", "min"), ("gmt_policy", "published_per_s", "min"),
                ("gmt_bridge", "writer_late_max_ms", "max"), ("gmt_bridge", "writer_work_max_ms", "max"),
                ("gmt_bridge", "lowstate_rate_hz", "min"), ("gmt_bridge", "lowcmd_rate_hz", "min"))


def timing_summary(history, t0: float, t1: float | None) -> dict:
    """The worst 1 s windows of the nodes' own timing diagnostics over [t0, t1]."""
    out: dict = {}
    for node, key, worst in _TIMING_KEYS:
        values = []
        for t, name, v in history:
            if name == node and t >= t0 and (t1 is None or t <= t1):
                try:
                    values.append(float(v[key]))
                except (KeyError, ValueError):
                    pass
        values = [x for x in values if math.isfinite(x)]
        if values:
            out.setdefault(node, {})[f"{worst}_{key}"] = round(max(values) if worst == "max" else min(values), 2)
    return out


def _r(x, digits):
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _state_changes(player, rel) -> list:
    out, last = [], None
    for t, s in player:
        key = (s.get("state"), s.get("clip"))
        if key != last:
            out.append({"t": rel(t), "state": s.get("state"), "clip": s.get("clip")})
            last = key
    return out


def summary_line(r: dict) -> str:
    if r["supervisor"].get("aborted"):
        status = "NOT PLAYED (supervisor fault before the clip)"
    elif r.get("fell") is None:
        status = "not scored"
    elif r["fell"]:
        status = f"FELL at {r['fall_time_s']:.2f} s"
    elif r.get("ended_early_by"):
        status = f"STOPPED by the supervisor at {r['duration_s']:.2f} s of {r['requested_s']:.2f}, upright until then"
    else:
        status = "upright"
    lat = r.get("latency_ms") or {}
    modes = ">".join(m["mode"] for m in r["supervisor"]["modes"])
    errors = (f" | E_mpjpe {r['e_mpjpe_rad']:.3f} rad | E_mpkpe {r['e_mpkpe_mm']:.1f} mm | E_vel {r['e_vel_mps']:.3f} m/s"
              f" | E_yaw_vel {r['e_yaw_vel_radps']:.3f} rad/s") if r.get("e_mpjpe_rad") is not None else ""
    return (f"sim2sim {r['clip']}: {status} over {r['duration_s']:.2f} s{errors} | policy {r['policy_hz']} Hz"
            f" | lowcmd {r['lowcmd_hz']} Hz, {r['bad_crc']} bad CRC | latency p50 {lat.get('p50')} p99 {lat.get('p99')} ms"
            f" | sim {r['sim']['real_time_factor']}x real time | {modes}"
            + (f" | FAULT: {r['supervisor']['fault']}" if r["supervisor"].get("fault") else "")
            + ("" if r.get("sim_real_time", True) else " | NOT REAL TIME (machine overloaded)"))
