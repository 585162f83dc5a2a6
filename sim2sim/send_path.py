"""How the policy's targets reach the motors in the offline loop (``sim2sim.evaluate.run_episode``):
through the bridge's own ``Supervisor`` and ``CommandLimits`` as config/bridge.yaml sets them (one
send path, the robot's), the joint-range clip of earlier versions, or raw; and the bridge's fall
check."""
from __future__ import annotations

import math

from gmt_ros.core import g1
from gmt_ros.core.command_limits import ClipReport, CommandLimits
from gmt_ros.core.contract import PolicyContract
from gmt_ros.core.fall_check import FallCheck
from gmt_ros.core.supervisor import Request, Supervisor, SupervisorConfig
from gmt_ros.graph import BRIDGE, node_parameters

# The bridge's writer rate (config/bridge.yaml command_rate_hz): how often it applies the limits.
_BRIDGE_YAML = node_parameters(BRIDGE)  # the bridge's settings: rate, limits, fall check, damping
BRIDGE_RATE_HZ = float(_BRIDGE_YAML["command_rate_hz"])
CLIP_REASONS = ("joint_limit", "velocity_limit", "torque_limit")


# Send paths of ``gmt-ros eval/evaluate --send-path``: (command_limits, fall_check) of run_episode.
SEND_PATHS = {
    "bridge": ("bridge", "bridge"),  # the bridge's supervisor: stop band, speed and torque limits, fall check
    "range": ("range", "bridge"),    # the same with the joint-range clip of earlier versions
    "raw": ("raw", "off"),           # the policy's targets straight to the motors, no supervisor
}


def resolve_limits(command_limits) -> tuple[CommandLimits | None, str]:
    if command_limits is None or (isinstance(command_limits, str) and command_limits == "raw"):
        return None, "raw"
    if isinstance(command_limits, str):
        if command_limits == "bridge":
            return bridge_limits(), "bridge"
        if command_limits == "range":  # no stop band: targets clipped to the joint range
            return bridge_limits(stop_torque_fraction=0.0), "range"
        raise ValueError(f"command_limits must be 'bridge', 'range', 'raw', None or a CommandLimits, "
                         f"got {command_limits!r}")
    if isinstance(command_limits, CommandLimits):
        return command_limits, "custom"
    raise TypeError(f"command_limits must be 'bridge', 'range', 'raw', None or a CommandLimits, "
                    f"got {type(command_limits).__name__}")


_HEIGHT_ESTIMATOR = None


def bridge_limits(stop_torque_fraction: float | None = None) -> CommandLimits:
    """The bridge's command limits as config/bridge.yaml sets them (gross margin, stop band);
    ``stop_torque_fraction`` overrides the YAML's (0: the joint-range clip)."""
    fraction = _BRIDGE_YAML["stop_torque_fraction"] if stop_torque_fraction is None else stop_torque_fraction
    return CommandLimits(gross_margin_rad=float(_BRIDGE_YAML["gross_margin_rad"]),
                         stop_torque=float(fraction) * g1.TAU_MAX)


def bridge_fall_check(**thresholds) -> FallCheck:
    """The bridge's fall check as config/bridge.yaml sets it (or with the given thresholds), with
    the pelvis height estimate (built once per process) if the bridge uses it."""
    global _HEIGHT_ESTIMATOR
    if _HEIGHT_ESTIMATOR is None:
        from gmt_ros.core.height_estimate import PelvisHeightEstimator

        _HEIGHT_ESTIMATOR = PelvisHeightEstimator()
    settings = {"tilt_rad": float(_BRIDGE_YAML["fall_tilt_rad"]), "height_m": float(_BRIDGE_YAML["fall_height_m"]),
                "height_estimate": _HEIGHT_ESTIMATOR if _BRIDGE_YAML["fall_height_check"] else None}
    return FallCheck(**(settings | thresholds))


def resolve_fall_check(fall_check) -> FallCheck | None:
    if fall_check is None or (isinstance(fall_check, str) and fall_check == "off"):
        return None
    if isinstance(fall_check, str):
        if fall_check == "bridge":
            return bridge_fall_check()
        raise ValueError(f"fall_check must be 'bridge', 'off', None or a FallCheck, got {fall_check!r}")
    if isinstance(fall_check, FallCheck):
        return fall_check
    raise TypeError(f"fall_check must be 'bridge', 'off', None or a FallCheck, got {type(fall_check).__name__}")


_OFF = FallCheck(tilt_rad=math.inf, height_m=-math.inf, overspeed_factor=1e9)  # thresholds never reached


def supervised_send_path(contract: PolicyContract, limits: CommandLimits, fall_check: FallCheck | None,
                         start_state, hold_at: float, hold_dt: float) -> Supervisor:
    """The bridge's supervisor for ``contract`` (its damping as config/bridge.yaml sets it;
    ``fall_check`` None: never fires), brought to policy mode the way an operator does it:
    start-up check of a 29-DoF robot with every slot live, start (damping), start (ramp, zero
    length here), a hold tick at
    ``hold_at - hold_dt`` and ``hold_at`` (the velocity limit measures the first policy target
    from that hold pose), policy. ``start_state`` is the robot's state meanwhile."""
    config = SupervisorConfig(ramp_time_s=0.0, damping_kd=float(_BRIDGE_YAML["damping_kd"]))
    sup = Supervisor(contract.command_table, config, limits, fall_check=fall_check or _OFF)
    t0 = hold_at - 2 * hold_dt
    sup.startup_check(min(g1.MODE_MACHINE_29DOF), range(g1.NUM_BODY_JOINTS), now=t0)
    for req in (Request.START, Request.START):
        sup.request(req, t0)
    for now in (hold_at - hold_dt, hold_at):  # ramp (done at once) -> hold
        sup.tick(now, start_state, now, None, None)
    sup.request(Request.POLICY, hold_at)
    return sup


def is_command_fault(fault: str) -> bool:
    """A supervisor fault from CommandLimits (``Supervisor.tick``: "unsafe command in ..."), as
    opposed to its fall check."""
    return fault.startswith("unsafe command")


def add_clips(total: ClipReport, report: ClipReport) -> None:
    for reason in CLIP_REASONS:
        setattr(total, reason, getattr(total, reason) + getattr(report, reason))
