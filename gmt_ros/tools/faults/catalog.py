"""The faults, as a registry of fault classes: each says how it is injected (``sim_settings`` for
faults the simulated robot plays, ``inject`` for those the suite causes), when detection became
possible (``reference``) and what counts as handled (``verdict``). ``verdict.evaluate`` is the one
verdict path: what every fault reports, then the fault's own part.

Adding a fault is a class here (and a row in docs/FAULTS.md), not a branch in the runner.
"""
from __future__ import annotations

import re
import signal
import threading
import time
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from gmt_ros.tools import UsageError
from gmt_ros.tools.faults.model import (
    DETECTION_S,
    MALFORMED_KINDS,
    ROS_LOG_TIME,
    FaultRunError,
    Injection,
    Verdict,
    corrupted_positions,
    fall_crossing,
    largest_gap,
    log_lines,
    malformed_window,
    ms,
    policy_until,
    sim_fault,
)

if TYPE_CHECKING:
    from gmt_ros.tools.faults.run import FaultRun

PUSH_MPS = 4.0  # push@T:V: enough to throw the standing G1 over (tested: see docs/FAULTS.md)
STATE_DELAY = "0.2±0.05"  # every state 150-250 ms late: the first arrives after the 100 ms timeout
MALFORMED_S = 1.0  # malformed windows published for this long, 50 Hz, kinds in turn
CORRUPT_RATE_HZ = 100.0  # corrupted PD targets published this often beside the policy's
# With the player's and the malformed windows both at 50 Hz (one every 10 ms), the policy's depth-2
# queue overwrites a window only if its thread takes none for 20-30 ms; its PD targets (stamped at
# each 20 ms tick) then show a gap of at least this.
QUEUE_OVERRUN_STALL_S = 0.025
# Mean |joint - default pose| over the body while standing after the easing: the policy stands close
# to its default pose, a robot still in the walk's last pose or lying on the floor does not.
STANDING_POSE_TOLERANCE_RAD = 0.1
PLAYER_STALE_WATCH_S = 2.5  # after the policy's easing to standing: the robot must stand, untouched, this long



class Fault:
    """One fault of the suite. Class attributes describe it; subclasses override the hooks."""

    number: ClassVar[int]
    name: ClassVar[str]
    title: ClassVar[str]
    group: ClassVar[str]      # fault class, for --short
    expected: ClassVar[str]   # "damping" | "refusal" | "safe pose"
    cause: ClassVar[str]      # regular expression the supervisor's fault (or refusal log) must match
    bound: ClassVar[str] = ""  # "state_timeout", "target_timeout", "detection", "window_timeout", "" (none)
    startup: ClassVar[bool] = False  # only the bridge and the sim run; the robot is checked at start
    # The simulated robot plays it at a fixed sim time: its --fault spec, "{t}" standing for that time.
    spec: ClassVar[str] = ""

    @property
    def sim_side(self) -> bool:
        return bool(self.spec)

    def sim_settings(self, fault_sim_time: float) -> dict[str, str]:
        """Settings for the sim node that make it play this fault (none for suite-side faults)."""
        return {"fault": self.spec.format(t=f"{fault_sim_time:.3f}")} if self.spec else {}

    def inject(self, run: FaultRun, inj: Injection) -> None:
        """Cause the fault during tracking (the sim plays sim-side faults by itself) and wait for
        the supervisor's reaction."""
        if not self.sim_side:
            raise NotImplementedError(f"{self.name} says neither how the suite injects it nor a sim spec")
        run.await_sim_fault(inj)

    def reference(self, v: Verdict) -> tuple[float | None, str]:
        """When detection became possible (wall time) and what that moment is."""
        return None, ""

    def verdict(self, v: Verdict) -> None:
        raise NotImplementedError

    def bound_s(self, settings: dict) -> float | None:
        """The time allowed from the reference to the first damping command at the robot (for the
        frozen player: to the policy's switch to the standing pose)."""
        return {
            "state_timeout": settings["state_timeout_s"] + DETECTION_S,
            "target_timeout": settings["target_timeout_s"] + DETECTION_S,
            "window_timeout": settings["window_timeout_s"] + DETECTION_S,
            "detection": DETECTION_S,
        }.get(self.bound)


# ------------------------------------------------------------------------------------------------
# Faults that must end in damping


class DampingFault(Fault):
    expected = "damping"

    def verdict(self, v: Verdict) -> None:
        fault_msg, fault_time = v.reaction.get("fault"), v.reaction.get("fault_time")
        reference, out, notes = v.reference, v.out, v.notes
        cause_lines = log_lines(v.log("bridge"), r"FAULT: ", before=v.raw.get("teardown_unix"))
        out["cause_log_line"] = cause_lines[0] if cause_lines else None
        if reference is None and fault_msg:
            raise FaultRunError(f"{self.name} was never injected: the supervisor faulted first ({fault_msg})")
        earliest = self.earliest(v)
        if earliest is not None and fault_time is not None and fault_time < earliest - 0.002:
            raise FaultRunError(f"{self.name}: the supervisor faulted ({fault_msg}) "
                                f"{ms(earliest - fault_time)} ms before the fault could be detected")
        if fault_msg and not re.search(self.cause, fault_msg):
            # Another fault won the race (on a starved machine the policy can lose the robot on its
            # own): this run says nothing about the injected fault.
            gross = [j for _r, s, j in v.raw.get("gross_targets", []) if earliest and s >= earliest - 1.0]
            raise FaultRunError(f"{self.name}: the supervisor latched another fault "
                                f"{ms(fault_time - earliest) if fault_time and earliest else '?'} ms after the "
                                f"reference: {fault_msg}" + (f" (the policy's targets went past the gross margin at "
                                                             f"{gross[0]})" if gross else ""))
        valid_before = policy_until(v.raw["supervisor"], earliest) if earliest else None
        if valid_before is False:
            raise FaultRunError(f"{self.name}: the supervisor left policy mode before the fault could act "
                                f"(modes: {out['supervisor_modes']})")
        damping_at_robot = out.pop("_damping_at_robot")
        v.checks.update({
            "fault_injected": reference is not None,
            "supervisor_damping": bool(fault_msg) and v.reaction.get("mode") == "damping",
            "cause_named": bool(fault_msg and re.search(self.cause, fault_msg)) and bool(cause_lines),
            "damping_reached_robot": damping_at_robot is not None,
            "no_pd_after_damping": not out.pop("_pd_after_damping"),
        })
        within = (damping_at_robot is not None and reference is not None and v.limit is not None
                  and damping_at_robot - reference <= v.limit)
        out["within_bound"] = within
        if v.limit is not None and damping_at_robot is not None and reference is not None and not within:
            notes.append(f"damping reached the robot {ms(damping_at_robot - reference)} ms after the reference, "
                         f"{ms(damping_at_robot - reference - v.limit)} ms over the {ms(v.limit)} ms bound")
        out["observed"] = "damping" if v.checks["supervisor_damping"] else (
            f"no damping (supervisor in {(v.raw['supervisor_latest'] or {}).get('mode')})")

    def earliest(self, v: Verdict) -> float | None:
        """No fault of this kind can be decided before this wall time."""
        return v.reference


class StateLinkFault(DampingFault):
    """rt/lowstate stops, comes late or corrupt: the supervisor's state watchdog."""

    group, cause, bound = "state link", r"robot state stale", "state_timeout"

    def reference(self, v: Verdict) -> tuple[float | None, str]:
        row = sim_fault(v.sim, self.name)
        if row and row["fired"]:
            v.inj.start_unix = row["fired_unix_time"]
            return row["last_state_before_unix_time"], "the last rt/lowstate the sim wrote before the fault"
        return None, ""

    def verdict(self, v: Verdict) -> None:
        super().verdict(v)
        age = re.match(r"robot state stale \(([\d.]+) ms", v.reaction.get("fault") or "")
        if age and v.out["detection_ms"] is not None:
            # The bridge ages a state from when its listener took it: the rest of the detection time is
            # how late that was after the sim wrote it (DDS + the bridge's listener thread).
            v.out["bridge_state_take_delay_ms"] = round(v.out["detection_ms"] - float(age.group(1)), 1)


class LowstateStop(StateLinkFault):
    number, name, title = 1, "lowstate_stop", "the sim stops publishing rt/lowstate"
    spec = "lowstate_stop@{t}"


class LowstateDelay(StateLinkFault):
    number, name = 2, "lowstate_delay"
    title = f"every rt/lowstate delayed {STATE_DELAY} s (beyond the 0.1 s timeout)"
    spec = "lowstate_delay@{t}:" + STATE_DELAY


class StateBadCrc(StateLinkFault):
    number, name, title = 3, "state_bad_crc", "rt/lowstate with a wrong CRC (the bridge drops them)"
    spec = "state_bad_crc@{t}"


class PolicyKill(DampingFault):
    number, name, title, group = 4, "policy_kill", "policy process killed (SIGKILL)", "policy"
    cause, bound = r"PD target stale", "target_timeout"

    def inject(self, run: FaultRun, inj: Injection) -> None:
        inj.start_unix = run.session.kill("policy", signal.SIGKILL)
        run.await_reaction(inj)

    def reference(self, v: Verdict) -> tuple[float | None, str]:
        stamps = [s for _r, s, _c in v.raw["targets"]]
        return (max(stamps), "header.stamp of the last PD target the policy published") if stamps else (None, "")


class CorruptTargets(DampingFault):
    """PD targets a broken policy would publish, stamped with the contract's identity, published on
    /gmt/joint_targets by the suite next to the policy's own (the bridge takes the newest at each
    tick): the policy node has no fault switch of its own."""

    group, cause, bound = "policy", r"unsafe command in policy|invalid PD target", "detection"
    kind = ""

    def inject(self, run: FaultRun, inj: Injection) -> None:
        stop = threading.Event()
        probe, scale = run.probe, run.contract.action_scale

        def publish() -> None:
            while not stop.is_set():
                probe.publish_corrupted(lambda q: corrupted_positions(self.kind, q, scale))
                stop.wait(1.0 / CORRUPT_RATE_HZ)

        inj.start_unix = time.time()
        thread = threading.Thread(target=publish, name=f"inject-{self.name}", daemon=True)
        thread.start()
        try:
            run.await_reaction(inj)
        finally:
            stop.set()
            thread.join(timeout=1.0)

    def reference(self, v: Verdict) -> tuple[float | None, str]:
        bad = [s for _r, s, c in v.raw["targets"] if c]
        return (min(bad), "header.stamp of the first corrupted PD target") if bad else (None, "")


class PolicyNan(CorruptTargets):
    number, name, kind = 5, "policy_nan", "nan"
    title = "NaN PD targets on /gmt/joint_targets (a policy gone wrong)"


class PolicyHuge(CorruptTargets):
    number, name, kind = 6, "policy_huge", "huge"
    title = "huge PD targets on /gmt/joint_targets (the targets of raw action 1000, past the policy's clip)"


class PushFall(DampingFault):
    number, name, title, group = 9, "push_fall", f"robot pushed over ({PUSH_MPS:g} m/s)", "robot"
    cause, bound = r"fall detected|joint overspeed|unsafe command in policy: q target", "detection"
    spec = "push@{t}:" + f"{PUSH_MPS:g}"

    def reference(self, v: Verdict) -> tuple[float | None, str]:
        row = sim_fault(v.sim, "push")
        if not (row and row["fired"] and v.trace is not None):
            return None, ""
        push = v.inj.start_unix = row["fired_unix_time"]
        crossing, criterion = fall_crossing(v.trace, push, v.settings)
        v.out["push_to_fall_criterion_ms"] = ms(crossing - push) if crossing else None
        # The policy fights the push; its targets may go past the command limits' gross margin (a
        # fault) before the robot tips over far enough for the fall detector.
        gross = [(s, j) for _r, s, j in v.raw.get("gross_targets", []) if s >= push]
        v.out["via_fall_detection"] = not ("unsafe command" in (v.reaction.get("fault") or "") and gross)
        if v.out["via_fall_detection"]:
            return crossing, f"the robot crossing the fall criterion ({criterion}), interpolated in the sim's 50 Hz trace"
        return gross[0][0], (f"header.stamp of the policy's first target past a joint limit by more than the gross "
                             f"margin after the push ({gross[0][1]})")

    def earliest(self, v: Verdict) -> float | None:
        # A push is detected when the robot tips over; the fall criterion read from the 50 Hz trace
        # is an estimate of that moment, so only the push itself bounds the fault time from below.
        return v.inj.start_unix

    def verdict(self, v: Verdict) -> None:
        super().verdict(v)
        if v.reaction.get("fault"):
            v.out["observed"] += (" by the fall detector" if v.out.get("via_fall_detection") else
                                  " by the command limits (the policy's push-recovery targets), before the fall detector")


class EStop(DampingFault):
    number, name, title, group = 10, "estop", "e-stop (remote L1+R1) during tracking", "robot"
    cause, bound = r"^e-stop$", "detection"
    spec = "press@{t}:L1+R1:1.0"

    def reference(self, v: Verdict) -> tuple[float | None, str]:
        row = sim_fault(v.sim, "press")
        if row and row["fired"]:
            v.inj.start_unix = row["fired_unix_time"]
            return row["first_state_after_unix_time"], "the first rt/lowstate carrying L1+R1"
        return None, ""


# ------------------------------------------------------------------------------------------------
# A frozen motion producer: the policy eases to its standing pose


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


# ------------------------------------------------------------------------------------------------
# Refusals: the graph goes on (malformed windows) or never starts (start-up checks)


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


class StartupRefusal(Fault):
    """The robot does not fit the contract: start must be refused, and clear too."""

    group, expected, startup = "start-up", "refusal", True
    sim: ClassVar[dict[str, str]] = {}

    def sim_settings(self, fault_sim_time: float) -> dict[str, str]:
        return dict(self.sim)

    def verdict(self, v: Verdict) -> None:
        from sim2sim.trace import PD

        extra = v.inj.extra
        startup_error = v.reaction.get("startup_error")
        answers = extra.get("start_answers", [])
        lines = [line for line in log_lines(v.log("bridge"), r"start-up check failed") if "FAULT" in line]
        no_pd = v.trace is not None and not bool(np.any(v.trace.event_kind == PD))
        v.checks.update({
            "start_up_error_named": bool(startup_error and re.search(self.cause, startup_error)),
            "start_refused": len(answers) == 2 and answers[1]["success"] is False
                             and "start-up check failed" in answers[1]["message"],
            "clear_refused": extra.get("clear_answer", {}).get("success") is False,
            "stays_damping": (extra.get("final_state") or {}).get("mode") == "damping",
            "no_pd_command_at_robot": no_pd,
            "cause_logged": bool(lines),
        })
        v.out.update(startup_error=startup_error, start_answers=answers, clear_answer=extra.get("clear_answer"),
                     cause_log_line=lines[0] if lines else None, within_bound=None,
                     observed="start refused, damping" if v.checks["start_refused"] and v.checks["stays_damping"]
                     else "see checks")


class WrongModeMachine(StartupRefusal):
    number, name = 11, "wrong_mode_machine"
    title = "robot reports mode_machine 4 (23-DoF) to the 29-joint TWIST2 contract"
    cause = r"start-up check failed: robot reports mode_machine 4"
    sim: ClassVar[dict[str, str]] = {"mode_machine": "4"}


class DeadWaist(StartupRefusal):
    number, name = 12, "dead_waist"
    title = "robot reports no data on waist roll/pitch (slots 13, 14)"
    cause = (r"start-up check failed: motor slots the policy drives report no live data: waist_roll_joint, "
             r"waist_pitch_joint")
    sim: ClassVar[dict[str, str]] = {"fault": "dead_slots:waist_roll_joint,waist_pitch_joint"}


# ------------------------------------------------------------------------------------------------
# The registry and the plan


FAULTS: tuple[Fault, ...] = tuple(sorted(
    (cls() for cls in (LowstateStop, LowstateDelay, StateBadCrc, PolicyKill, PolicyNan, PolicyHuge, PlayerStop,
                       MalformedWindows, PushFall, EStop, WrongModeMachine, DeadWaist)),
    key=lambda f: f.number))
BY_NAME: dict[str, Fault] = {f.name: f for f in FAULTS}

# One run per entry (a fresh graph each); malformed windows leave the graph tracking, so a second
# fault follows in the same run. --short covers every class with fewer runs.
RUNS = {
    "full": (("lowstate_stop",), ("lowstate_delay",), ("state_bad_crc",), ("malformed_windows", "policy_kill"),
             ("policy_nan",), ("policy_huge",), ("player_stop",), ("push_fall",), ("estop",),
             ("wrong_mode_machine",), ("dead_waist",)),
    "short": (("malformed_windows", "policy_nan"), ("state_bad_crc",), ("estop",), ("wrong_mode_machine",)),
}


def plan_runs(mode: str, only=None) -> list[tuple[str, ...]]:
    """The runs for ``mode`` ("full"/"short"), restricted to ``only`` (fault names) if given;
    a chained run whose partner is not selected runs its selected fault alone."""
    if only:
        unknown = [n for n in only if n not in BY_NAME]
        if unknown:
            raise UsageError(f"unknown fault(s) {unknown}; known: {', '.join(BY_NAME)}")
        runs = []
        for run in RUNS["full"]:
            kept = tuple(n for n in run if n in only)
            if kept:
                runs.append(kept)
        return runs
    return list(RUNS[mode])


def bound_s(fault: Fault, settings: dict) -> float | None:
    return fault.bound_s(settings)
