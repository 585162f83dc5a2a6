"""The bridge's parameters (``gmt_bridge``; config/bridge.yaml holds the shipped values) and the
checks a set of values must pass before the bridge touches the robot's network."""
from __future__ import annotations

import math

from gmt_ros.core import g1
from gmt_ros.core.command_limits import GROSS_MARGIN_RAD
from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.core.fall_check import FALL_HEIGHT_M, FALL_TILT_RAD
from gmt_ros.core.supervisor import SupervisorConfig
from gmt_ros.nodes.parameters import require_positive


class BridgeConfigError(ValueError):
    """A parameter value the bridge cannot run with."""


# name: (default, type, description)
PARAMETERS = {
    "network_interface": ("lo", str, "interface of the robot's DDS network (robot: its wired NIC; simulator: lo)"),
    "dds_domain": (1, int, "DDS domain of rt/lowstate and rt/lowcmd (robot: 0; simulator: usually 1)"),
    "contract": (DEFAULT_POLICY, str, "policy contract name (models/<name>/contract.yaml) or path: default pose, kp/kd, held joints"),
    "target_topic": ("/gmt/joint_targets", str, "sensor_msgs/JointState PD targets by joint name"),
    "command_rate_hz": (500.0, float, "rt/lowcmd rate"),
    "target_timeout_s": (0.1, float, "policy mode: a PD target older than this (since header.stamp) is a fault -> damping"),
    "state_timeout_s": (0.1, float, "no rt/lowstate for this long: fault -> damping"),
    "ramp_time_s": (3.0, float, "minimum-jerk ramp from the measured pose to the default pose"),
    "damping_kd": (g1.DAMPING_KD, float, "kd of the damping command (kp 0) on every motor"),
    "fall_tilt_rad": (FALL_TILT_RAD, float, "pelvis inclination from vertical above this: fall -> damping"),
    "fall_height_check": (True, bool, "also detect falls from a pelvis height estimate (IMU + leg kinematics)"),
    "fall_height_m": (FALL_HEIGHT_M, float, "pelvis height estimate below this: fall -> damping"),
    "startup_check_states": (10, int, "rt/lowstate messages (after the first) whose live motor slots and mode_machine are checked against the contract"),
    "release_motion_service": (False, bool, "at start, release the robot's built-in motion service with MotionSwitcherClient (CheckMode/ReleaseMode)"),
    "dry_run": (True, bool, "publish what would be sent on /gmt/lowcmd_preview and never write rt/lowcmd"),
    "gross_margin_rad": (GROSS_MARGIN_RAD, float, "a q target beyond a joint limit by more than this is a fault (smaller excursions are clipped); calibrated in gmt_ros/core/command_limits.py"),
    "stop_torque_fraction": (1.0, float, "a q target past a joint limit is clipped where the PD would push the joint into its stop with this fraction of the motor's rated torque (gmt_ros/core/command_limits.py, docs/SAFETY.md)"),
    "state_publish_rate_hz": (100.0, float, "/joint_states and /imu rate: every n-th rt/lowstate, n from the measured lowstate rate (never below the policy's rate: all states below it)"),
    "min_lowstate_rate_hz": (400.0, float, "warn when rt/lowstate arrives slower than this (a G1 publishes 500 Hz; Unitree's Python simulator 1/SIMULATE_DT)"),
    "single_state_source": (True, bool, "rt/lowstate from two publishers (DDS writers), or a tick going back, is a fault -> damping: a second robot or simulator on the interface and domain (gmt_ros/core/state_source.py)"),
    "check_lowstate_crc": (True, bool, "verify each rt/lowstate's CRC (a G1 always sets it); false only for Unitree's Python simulator (crc 0), on loopback with a non-zero domain (config/bridge_unitree_mujoco.yaml)"),
    "simulator_mode_machine": (0, int, "mode_machine to assume when the robot reports 0 (Unitree's Python simulator never sets it; 5 = 29-DoF); 0: none. Loopback with a non-zero domain only"),
    "preview_rate_hz": (50.0, float, "dry_run preview rate"),
    "status_rate_hz": (10.0, float, "/gmt/supervisor/state periodic rate (it is also published on every event)"),
    "link_timeout_s": (2.0, float, "warn when no rt/lowstate arrived this long after start"),
    "shutdown_damping_s": (0.5, float, "damping sent on shutdown before the writer stops"),
    "mode_pr": (0, int, "LowCmd_.mode_pr: 0 ankles as pitch/roll joints (policies), 1 parallel motors"),
    "writer_priority": (0, int, "SCHED_FIFO priority 1-99 for the lowcmd writer thread (needs CAP_SYS_NICE); 0: normal"),
}


def check_parameters(p: dict) -> SupervisorConfig:
    """Refuse values the bridge cannot run with (BridgeConfigError naming the parameter); the
    supervisor's settings from them."""
    require_positive(p, ("command_rate_hz", "preview_rate_hz", "status_rate_hz", "state_publish_rate_hz"),
                     BridgeConfigError)
    simulator_only = [n for n in ("check_lowstate_crc", "simulator_mode_machine")
                      if (n == "check_lowstate_crc" and not p[n]) or (n == "simulator_mode_machine" and p[n])]
    if simulator_only and (p["network_interface"] != "lo" or p["dds_domain"] == 0):
        raise BridgeConfigError(
            f"{' and '.join(simulator_only)} (Unitree's Python simulator profile) only on loopback with a non-zero "
            f"domain, got interface {p['network_interface']!r} domain {p['dds_domain']}: a real G1 sets the CRC and "
            f"its mode_machine")
    if not 0 <= p["simulator_mode_machine"] <= 255:
        raise BridgeConfigError(f"simulator_mode_machine must be 0..255, got {p['simulator_mode_machine']}")
    if p["startup_check_states"] < 1:
        raise BridgeConfigError(f"startup_check_states must be >= 1, got {p['startup_check_states']}")
    if not 0 <= p["writer_priority"] <= 99:
        raise BridgeConfigError(f"writer_priority must be 0 (normal) or a SCHED_FIFO priority 1..99, got {p['writer_priority']}")
    if not (math.isfinite(p["gross_margin_rad"]) and p["gross_margin_rad"] > 0):
        raise BridgeConfigError(f"gross_margin_rad must be a positive number of radians, got {p['gross_margin_rad']}")
    if not (math.isfinite(p["stop_torque_fraction"]) and 0.0 <= p["stop_torque_fraction"] <= 1.0):
        raise BridgeConfigError(f"stop_torque_fraction must be within [0, 1] (of each motor's rated torque), "
                                f"got {p['stop_torque_fraction']}")
    if p["mode_pr"] not in (0, 1):
        raise BridgeConfigError(f"mode_pr must be 0 or 1, got {p['mode_pr']}")
    try:
        return SupervisorConfig(
            state_timeout_s=p["state_timeout_s"], target_timeout_s=p["target_timeout_s"],
            ramp_time_s=p["ramp_time_s"], damping_kd=p["damping_kd"], fall_tilt_rad=p["fall_tilt_rad"],
            fall_height_m=p["fall_height_m"], single_state_source=p["single_state_source"],
        )
    except ValueError as exc:
        raise BridgeConfigError(str(exc)) from None
