"""Faults the bridge must refuse at start: the robot it finds is not the one its contract describes
(a wrong mode_machine, dead waist motors). Only the bridge and the sim run."""
from __future__ import annotations

import re
from typing import ClassVar

import numpy as np

from gmt_ros.tools.faults.fault import Fault
from gmt_ros.tools.faults.model import (
    Verdict,
    log_lines,
)


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
