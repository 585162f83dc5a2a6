"""Faults that must end in damping, decided by the bridge's supervisor: the state link (stopped,
delayed, corrupted), a killed policy, corrupted PD targets, a push that throws the robot over, the
operator's e-stop."""
from __future__ import annotations

import re
import signal
import threading
import time
from typing import TYPE_CHECKING

from gmt_ros.tools.faults.fault import Fault
from gmt_ros.tools.faults.model import (
    FaultRunError,
    Injection,
    Verdict,
    corrupted_positions,
    fall_crossing,
    log_lines,
    ms,
    policy_until,
    sim_fault,
)

if TYPE_CHECKING:
    from gmt_ros.tools.faults.run import FaultRun

PUSH_MPS = 4.0  # push@T:V: enough to throw the standing G1 over (tested: see docs/FAULTS.md)
STATE_DELAY = "0.2±0.05"  # every state 150-250 ms late: the first arrives after the 100 ms timeout
CORRUPT_RATE_HZ = 100.0  # corrupted PD targets published this often beside the policy's


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
        if re.match(r"fall detected|joint overspeed", v.reaction.get("fault") or ""):
            # The state the fall check latched on is logged, so that a false detection can be looked into.
            v.checks["fall_inputs_logged"] = bool(log_lines(v.log("bridge"), r"fall check inputs: lowstate tick \d+",
                                                            before=v.raw.get("teardown_unix")))
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
