"""Faults of the motion target, which the policy handles without a supervisor fault: a frozen
producer (the policy eases the robot to its standing pose) and malformed motion windows beside the
valid stream (refused, tracking goes on)."""
from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

import numpy as np

from gmt_ros.tools.faults.fault import Fault
from gmt_ros.tools.faults.model import (
    MALFORMED_KINDS,
    ROS_LOG_TIME,
    FaultRunError,
    Injection,
    Verdict,
    largest_gap,
    log_lines,
    malformed_window,
    ms,
)

if TYPE_CHECKING:
    from gmt_ros.tools.faults.run import FaultRun

MALFORMED_S = 1.0  # malformed windows published for this long, 50 Hz, kinds in turn
# With the player's and the malformed windows both at 50 Hz (one every 10 ms), the policy's depth-2
# queue overwrites a window only if its thread takes none for 20-30 ms; its PD targets (stamped at
# each 20 ms tick) then show a gap of at least this.
QUEUE_OVERRUN_STALL_S = 0.025
# Mean |joint - default pose| over the body while standing after the easing: the policy stands close
# to its default pose, a robot still in the walk's last pose or lying on the floor does not.
STANDING_POSE_TOLERANCE_RAD = 0.1
PLAYER_STALE_WATCH_S = 2.5  # after the policy's easing to standing: the robot must stand, untouched, this long


class PlayerStop(Fault):
    number, name, title, group = 7, "player_stop", "motion player frozen (SIGSTOP): no new motion windows", "motion target"
    expected, cause, bound = "safe pose", r"motion target stale: none accepted", "window_timeout"

    def inject(self, run: FaultRun, inj: Injection) -> None:
        """Freeze the player; the policy should ease the robot to standing and hold it there, with
        no supervisor fault. Watch for the timeout, the easing and a while of standing."""
        s = run.settings
        inj.start_unix = run.session.kill("player", signal.SIGSTOP)
        end = time.monotonic() + s["window_timeout_s"] + s["stale_blend_s"] + PLAYER_STALE_WATCH_S
        while time.monotonic() < end:
            state = run.session.supervisor_state()
            if state and state.get("fault"):
                inj.reaction = state
                break
            run.session._check_nodes()
            time.sleep(0.02)
        inj.extra["end_unix"] = time.time()
        if inj.reaction is None:
            inj.extra["final_state"] = run.session.supervisor_state()

    def reference(self, v: Verdict) -> tuple[float | None, str]:
        # The player's last window arrived before the SIGSTOP: the policy's window_timeout_s runs out
        # at the latest that long after it.
        return v.inj.start_unix, "the SIGSTOP of the player"

    def verdict(self, v: Verdict) -> None:
        """The policy says so, eases the robot to its standing pose and keeps it there under the policy
        (no supervisor fault, targets flowing, upright, near the contract's standing pose)."""
        inj, reference, limit, trace = v.inj, v.reference, v.limit, v.trace
        fault_msg = v.reaction.get("fault")
        if fault_msg and reference is not None and limit is not None and v.reaction.get("fault_time", np.inf) < reference + limit:
            # Before the timeout the last window still drove the robot: the frozen player is not the cause.
            raise FaultRunError(f"player_stop: the supervisor latched a fault before the window timeout: {fault_msg}")
        lines = log_lines(v.log("policy"), self.cause, limit=3)
        stamp = ROS_LOG_TIME.match(lines[0]) if lines else None
        seen = float(stamp.group(1)) if stamp else None
        end = inj.extra.get("end_unix", reference)
        settled_from = (seen or reference or 0.0) + v.settings["stale_blend_s"]
        flowing = [r for r, _s, c in v.raw["targets"] if settled_from <= r <= end and not c]
        fell = trace.fell_between(reference, end)[0] if trace is not None and reference is not None else None
        pose_error = None
        standing = v.raw.get("standing_pose")
        if trace is not None and standing is not None:
            rows = np.flatnonzero((trace.unix_time >= settled_from + 0.5) & (trace.unix_time <= end))
            if rows.size:
                pose_error = float(np.mean(np.abs(trace.joint_pos[rows] - np.asarray(standing))))
        final = inj.extra.get("final_state") or {}
        v.checks.update({
            "stale_window_logged": bool(lines),
            "no_supervisor_fault": fault_msg is None and final.get("mode") == "policy",
            "kept_publishing": len(flowing) >= 0.8 * 50 * max(end - settled_from, 0.0) and end > settled_from,
            "upright": fell is False,
            "standing_pose": pose_error is not None and pose_error < STANDING_POSE_TOLERANCE_RAD,
        })
        out = v.out
        out["detection_ms"] = ms(seen - reference) if seen and reference else None
        within = bool(seen and reference and limit is not None and seen - reference <= limit)
        out["within_bound"] = within
        if out["detection_ms"] is not None and not within:
            v.notes.append(f"the policy switched to the standing pose {out['detection_ms']} ms after the SIGSTOP, "
                           f"over the {ms(limit)} ms bound")
        out.update(cause_log_line=lines[0] if lines else None, targets_while_standing=len(flowing), fell_during=fell,
                   standing_pose_error_rad=None if pose_error is None else round(pose_error, 4),
                   observed="eased to the standing pose and held it under the policy" if all(v.checks.values())
                   else "see checks")


class MalformedWindows(Fault):
    number, name, group, expected = 8, "malformed_windows", "motion target", "refusal"
    title = "malformed motion windows (unknown joint, wrong length, NaN) next to the valid stream"
    cause = r"refused motion target"

    def inject(self, run: FaultRun, inj: Injection) -> None:
        from gmt_ros.core.window_check import MotionTargetError
        from gmt_ros.nodes.window_codec import decode_window

        before = run.policy_rejections()
        inj.start_unix = time.time()
        published = dict.fromkeys(MALFORMED_KINDS, 0)
        checked = {}
        k = 0
        while time.time() < inj.start_unix + MALFORMED_S:
            kind = MALFORMED_KINDS[k % len(MALFORMED_KINDS)]
            msg = malformed_window(kind, time.time())
            if kind not in checked:  # the defect is what the decoder names, nothing else
                try:
                    decode_window(msg, dt=0.02)
                    checked[kind] = "accepted"
                except MotionTargetError as exc:
                    checked[kind] = exc.reason
            run.probe.window_pub.publish(msg)
            published[kind] += 1
            k += 1
            time.sleep(0.02)
        inj.extra["end_unix"] = time.time()
        time.sleep(1.2)  # the policy's diagnostics come at 1 Hz
        state = run.session.supervisor_state()
        inj.reaction = state if state.get("fault") else None
        inj.extra.update(published=published, decoder_reasons=checked, rejected_before=before,
                         rejected_after=run.policy_rejections(), mode_after=state.get("mode"),
                         fault_after=state.get("fault"))

    def verdict(self, v: Verdict) -> None:
        inj, trace, raw = v.inj, v.trace, v.raw
        lines = log_lines(v.log("policy"), r"refused motion target \(", limit=20)
        named = {kind: any(f"({kind})" in line for line in lines) for kind in MALFORMED_KINDS}
        before, after = inj.extra.get("rejected_before"), inj.extra.get("rejected_after")
        n_pub = sum(inj.extra.get("published", {}).values())
        t0 = inj.start_unix or 0.0
        t1 = inj.extra.get("end_unix", t0)
        flowing = [r for r, _s, c in raw["targets"] if t0 <= r <= t1 + 0.5 and not c]
        fell = trace.fell_between(t0, t1 + 0.5)[0] if trace is not None else None
        if inj.extra.get("fault_after") and before is not None and after is not None and after - before >= n_pub:
            # Every malformed window was refused, so they cannot have caused it: a disturbed run.
            raise FaultRunError(f"malformed_windows: the supervisor latched a fault while they were refused: "
                                f"{inj.extra['fault_after']}")
        refused = (after - before) if before is not None and after is not None else None
        unseen = max(0, n_pub - refused) if refused is not None else None
        # The policy's motion-target queue is reliable, depth 2 (each window replaces the last): when its
        # thread stalls, older windows are overwritten before it decodes them. A window it never took
        # was never used; the check is that windows went unseen only across such a stall.
        stall_s = largest_gap(sorted(s for _r, s, c in raw["targets"] if t0 - 0.1 <= s <= t1 + 0.1 and not c))
        v.checks.update({
            "decoder_names_each_defect": inj.extra.get("decoder_reasons") == {k: k for k in MALFORMED_KINDS},
            "each_refusal_logged": all(named.values()),
            "all_refused": unseen is not None and (unseen == 0 or stall_s >= QUEUE_OVERRUN_STALL_S),
            "no_supervisor_fault": inj.extra.get("fault_after") is None and inj.extra.get("mode_after") == "policy",
            "kept_tracking": len(flowing) >= 0.8 * 50 * (t1 + 0.5 - t0) and fell is False,
        })
        v.out.update(cause_log_line=lines[0] if lines else None, refusal_log_lines=lines[:6],
                     windows_published=inj.extra.get("published"), windows_refused=refused,
                     windows_unseen=unseen, policy_stall_ms=ms(stall_s),
                     targets_during=len(flowing), fell_during=fell, within_bound=None,
                     observed="refusal; the robot kept tracking the valid stream" if all(v.checks.values())
                     else "see checks")
