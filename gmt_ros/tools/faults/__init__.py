"""`gmt-ros faults`: the fault-injection suite. Every fault runs on the sim2sim node graph as real
processes (sim, bridge, policy, player) with real DDS on loopback, and must end in damping (or a
refusal) decided by the bridge's safety supervisor, with no out-of-limit command reaching the robot.

    gmt-ros faults --json OUT [--short] [--only NAME ...] [--motion CLIP] [--keep-logs DIR]
                   [--domain N] [--ros-domain N] [--retries N] [--realtime]

docs/FAULTS.md lists the faults, how each is injected and measured, and the figures. The parts:

- ``catalog``: the faults as a registry of classes, each with its injection (settings for the
  simulated robot, ``sim2sim.fault_injection``, or ``inject`` by the suite: a signal to a node
  (``ProcessGraph.kill``), corrupted PD targets or malformed motion windows published from this
  process), its reference time (when detection became possible) and its verdict; ``evaluate``.
- ``run``: one run (``FaultRun``, a ``Sim2SimSession`` of gmt_ros.tools.sim2sim_run): nodes up,
  sim on its gantry, supervisor walked to ``policy``, gantry released; the suite plays
  ``--motion`` and, after ``track_s`` of tracking (3 s, ``--short`` 1 s), injects, waits for the
  supervisor's reaction, lets the robot receive damping for ``OBSERVE_AFTER_S``, and stops
  everything (the sim first, so it writes its report and trace). Start-up faults run only the
  bridge and the sim. Malformed motion windows end in a refusal and leave the graph tracking, so
  their run goes on to a second fault.
- ``suite``: the planned runs with retries, the report, the command line.
- ``model``: what they share (settings, ``Injection``, the test inputs, log and trace readers).

``detection_ms`` = the supervisor's fault_time (state topic) - reference, and
``damping_at_robot_ms`` = the sim's first accepted damping command (trace event) - reference,
checked against the fault's bound. Every accepted command at the sim is checked with
``CommandLimits.violations`` (sim report ``lowcmd.out_of_limit``) and NaN ones are refused by the
sim's decoder (``lowcmd.invalid``): both must stay 0 for every fault.

Exit status: 0 when every fault was handled, 1 when one was not (or its run failed), 2 for bad input.
"""
from gmt_ros.tools.faults.catalog import BY_NAME, FAULTS, RUNS, Fault, bound_s, plan_runs
from gmt_ros.tools.faults.model import (
    MALFORMED_KINDS,
    FaultRunError,
    Injection,
    malformed_window,
    node_settings,
    standing_window,
)
from gmt_ros.tools.faults.suite import SuiteOptions, register, run_suite
from gmt_ros.tools.faults.verdict import evaluate

__all__ = ["BY_NAME", "FAULTS", "MALFORMED_KINDS", "RUNS", "Fault", "FaultRunError", "Injection", "SuiteOptions",
           "bound_s", "evaluate", "malformed_window", "node_settings", "plan_runs", "register", "run_suite",
           "standing_window"]
