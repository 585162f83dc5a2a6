"""The one verdict path of the fault suite: what every fault reports (the reference, the
supervisor's reaction, damping at the robot, commands out of limits), then the fault's own checks
(``Fault.verdict``)."""
from __future__ import annotations

import numpy as np

from gmt_ros.tools.faults.model import Injection, Verdict, mode_changes, ms


def evaluate(inj: Injection, raw: dict, settings: dict) -> dict:
    """The verdict on one fault from what the run recorded: the figures every fault reports (the
    reference, the supervisor's reaction, damping at the robot, commands out of limits), then the
    fault's own checks."""
    from sim2sim.trace import DAMPING, PD, SimTrace

    fault = inj.fault
    sim = raw["sim"] or {}
    lowcmd = sim.get("lowcmd", {})
    trace = SimTrace.load(raw["trace_path"]) if raw.get("trace_path") else None
    out = {"number": fault.number, "name": fault.name, "title": fault.title, "group": fault.group,
           "expected": fault.expected}
    v = Verdict(inj=inj, raw=raw, settings=settings, sim=sim, trace=trace, out=out, checks={},
                notes=list(inj.notes), reference=None, limit=fault.bound_s(settings))
    v.reference, ref_what = fault.reference(v)
    reference = v.reference
    out["injected_unix"] = inj.start_unix
    out["reference"] = ref_what or None
    out["reference_unix"] = reference

    # The supervisor's reaction.
    fault_msg, fault_time = v.reaction.get("fault"), v.reaction.get("fault_time")
    out["supervisor_fault"] = fault_msg
    out["supervisor_fault_unix"] = fault_time
    out["supervisor_modes"] = mode_changes(raw["supervisor"], raw.get("t0", 0.0))
    damping_at_robot = None
    pd_after_damping = False
    if trace is not None and reference is not None:
        damping_at_robot = trace.first_command_after(DAMPING, reference)
        if damping_at_robot is not None:
            later = (trace.event_kind == PD) & (trace.event_unix_time > damping_at_robot)
            pd_after_damping = bool(np.any(later))
    out["detection_ms"] = ms(fault_time - reference) if fault_time and reference else None
    out["damping_at_robot_ms"] = ms(damping_at_robot - reference) if damping_at_robot and reference else None
    out["bound_ms"] = ms(v.limit)
    out["_damping_at_robot"], out["_pd_after_damping"] = damping_at_robot, pd_after_damping

    # Commands that reached the robot.
    out["out_of_limit_commands"] = lowcmd.get("out_of_limit")
    out["out_of_limit_first"] = lowcmd.get("out_of_limit_first", [])
    out["invalid_commands_at_robot"] = lowcmd.get("invalid")
    out["bad_crc_commands_at_robot"] = lowcmd.get("bad_crc")
    v.checks["commands_within_limits"] = lowcmd.get("out_of_limit") == 0 and lowcmd.get("invalid") == 0

    fault.verdict(v)
    out.pop("_damping_at_robot", None)
    out.pop("_pd_after_damping", None)
    out["checks"] = v.checks
    out["handled"] = all(v.checks.values()) and out.get("within_bound") is not False
    out["supervisor_clip"] = (raw.get("supervisor_latest") or {}).get("clip")  # clipped joint-ticks, per reason
    out["sim"] = {"real_time_factor": sim.get("real_time_factor"), "overruns": (sim.get("pacing") or {}).get("overruns"),
                  "max_lag_ms": (sim.get("pacing") or {}).get("max_lag_ms"), "fell": (sim.get("robot") or {}).get("fell")}
    out["notes"] = v.notes
    return out
