"""The planner's parameters in one table, read by the ROS node (``gmt_ros.nodes.planner_node``)
and by the offline loop (``sim2sim.planner_eval``) from the same ``config/planner.yaml``.

``PARAMETERS`` maps each parameter to (default, type, description). ``split`` turns a dict of
values into the pieces: the clip list, ``PlannerSettings``, ``VelocityLimits`` and the node's own
settings (rates, topics, timeouts, remote). ``build_planner`` loads the clips and builds the
database and the planner.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import fields
from pathlib import Path

import yaml

from gmt_ros.core.clip_library import list_clips
from gmt_ros.core.locomotion_planner import LocomotionPlanner, PlannerSettings
from gmt_ros.core.motion import MotionRepairWarning, load_clip
from gmt_ros.core.motion_matching import MotionDatabase
from gmt_ros.core.paths import config_dir
from gmt_ros.core.playback import STANDING_HEIGHT
from gmt_ros.core.velocity_command import VelocityFeedback, VelocityLimits

NODE_NAME = "gmt_planner"
CONFIG_FILE = "planner.yaml"

# The library's walking clips (which of them turn or step sideways: docs/PLANNER.md). The crouch,
# squat, kick and dance clips are not locomotion.
DEFAULT_CLIPS = ["gmt/walk_stand", "gmt/basic_walk", "twist2/walk_001", "twist2/walk_002", "twist2/walk_003",
                 "twist2/walk_004", "twist2/walk_005", "twist2/walk_006", "twist2/walk_007"]

_SETTINGS: dict[str, float] = {f.name: f.default for f in fields(PlannerSettings)}  # type: ignore[misc]
_LIMITS: dict[str, float] = {f.name: f.default for f in fields(VelocityLimits)}  # type: ignore[misc]

_SETTING_TEXT = {
    "dt": "frame step of the windows (the policies' control step)",
    "window_s": "seconds of motion ahead in each window (GMT reads 1.9 s ahead, plus up to 0.5 s window age)",
    "search_interval_s": "how often the clip database is searched while walking",
    "blend_s": "cross-fade between two clip streams (legs and root)",
    "upper_blend_s": "cross-fade of the waist and arms between two clip streams",
    "stand_blend_s": "cross-fade into the standing pose once the command is zero",
    "stand_after_s": "command zero this long -> blend to standing",
    "switch_margin": "a new stream must beat continuing by this much feature cost",
    "neighbourhood_s": "frames of the playing clip this close count as continuing",
    "warp_max_speed": "m/s: bound of the root-velocity warp per axis (commands the clips do not contain)",
    "warp_max_yaw_rate": "rad/s: bound of the yaw-rate warp",
    "bias_time_s": "low-pass of the played-minus-clip-mean velocity the warp corrects",
    "gait_speed_floor": "m/s: slower translation commands search for gaits this fast, the warp slows them",
    "correction_deadband": "feedback corrections smaller than this (m/s, rad/s) keep the planned future",
    "replan_deadband": "target changes smaller than this (m/s, rad/s) keep the planned future",
}
_LIMIT_TEXT = {
    "max_vx": "m/s forward speed limit (faster commands are clamped)",
    "max_vx_backward": "m/s backward speed limit",
    "max_vy": "m/s sideways speed limit",
    "max_wz": "rad/s yaw-rate limit",
    "max_accel_x": "m/s^2 forward acceleration limit of the followed command",
    "max_accel_y": "m/s^2 sideways acceleration limit",
    "max_accel_wz": "rad/s^2 yaw acceleration limit",
    "absurd_speed": "m/s: a command beyond this is refused, not clamped",
    "absurd_yaw_rate": "rad/s: a yaw rate beyond this is refused, not clamped",
}

# name: (default, type, description)
PARAMETERS: dict[str, tuple] = {
    "clips": (list(DEFAULT_CLIPS), list, "library names of the locomotion clips to match over"),
    "clip_dirs": ([""], list, "extra clip directories besides the shipped models/motions"),
    "mirror_clips": (True, bool, "add every clip mirrored left-right"),
    "standing_height": (STANDING_HEIGHT, float, "pelvis height of the standing pose (m)"),
    "rate_hz": (50.0, float, "motion target publish rate"),
    "command_timeout_s": (0.5, float, "no accepted command this long: ease to standing"),
    "remote_enabled": (True, bool, "follow the wireless remote's sticks when they are deflected"),
    "remote_deadzone": (0.1, float, "stick deflection below this counts as centred"),
    "remote_timeout_s": (0.5, float, "remote samples older than this are ignored"),
    "log_throttle_s": (2.0, float, "each refusal reason is logged at most this often"),
    "velocity_feedback": (True, bool, "correct the command by the robot's measured velocity (leg odometry)"),
    "feedback_gain": (0.5, float, "1/s: integral gain of the velocity feedback"),
    "feedback_max_speed": (0.3, float, "m/s: bound of the feedback correction of vx and vy"),
    "feedback_max_yaw_rate": (0.4, float, "rad/s: bound of the feedback correction of wz"),
    "feedback_settle_s": (1.0, float, "a command must hold this long before the feedback integrates"),
    "joint_states_topic": ("/joint_states", str, "sensor_msgs/JointState, the robot's joints (leg odometry)"),
    "imu_topic": ("/imu", str, "sensor_msgs/Imu, the pelvis orientation (leg odometry)"),
    "cmd_vel_topic": ("/cmd_vel", str, "geometry_msgs/Twist velocity commands (in)"),
    "remote_topic": ("/wireless_remote", str, "std_msgs/UInt8MultiArray, the remote's 40 bytes from the bridge (in)"),
    "motion_target_topic": ("/gmt/motion_target", str, "trajectory_msgs/JointTrajectory windows (out)"),
    "status_topic": ("/gmt/planner/status", str, "std_msgs/String JSON status (out)"),
    **{k: (float(v), float, _SETTING_TEXT[k]) for k, v in _SETTINGS.items()},
    **{k: (float(v), float, _LIMIT_TEXT[k]) for k, v in _LIMITS.items()},
}


def split(values: dict) -> tuple[list[str], PlannerSettings, VelocityLimits, dict]:
    """(clips, settings, limits, the rest) from parameter values; missing ones take defaults,
    unknown ones are an error."""
    unknown = set(values) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown planner parameters {sorted(unknown)}")
    full = {name: spec[0] for name, spec in PARAMETERS.items()} | dict(values)
    settings = PlannerSettings(**{k: float(full[k]) for k in _SETTINGS})
    limits = VelocityLimits(**{k: float(full[k]) for k in _LIMITS})
    rest = {k: v for k, v in full.items() if k not in _SETTINGS and k not in _LIMITS and k != "clips"}
    for name in ("rate_hz", "command_timeout_s", "remote_timeout_s", "log_throttle_s", "standing_height"):
        if not (math.isfinite(rest[name]) and rest[name] > 0):
            raise ValueError(f"planner parameter {name} must be positive, got {rest[name]}")
    for name in ("feedback_gain", "feedback_max_speed", "feedback_max_yaw_rate", "feedback_settle_s"):
        if not (math.isfinite(rest[name]) and rest[name] >= 0):
            raise ValueError(f"planner parameter {name} must be >= 0, got {rest[name]}")
    if not (0.0 <= rest["remote_deadzone"] < 1.0):
        raise ValueError(f"planner parameter remote_deadzone must be in [0, 1), got {rest['remote_deadzone']}")
    clips = [c for c in full["clips"] if c]
    if not clips:
        raise ValueError("planner parameter clips names no clip")
    return clips, settings, limits, rest


def build_planner(clips: list[str], settings: PlannerSettings, limits: VelocityLimits, clip_dirs=(),
                  mirror: bool = True, standing_height: float = STANDING_HEIGHT) -> LocomotionPlanner:
    """Load the named clips from the library and build the database and planner."""
    library = list_clips([d for d in clip_dirs if d])
    missing = [c for c in clips if c not in library]
    if missing:
        raise ValueError(f"planner clips not in the library: {', '.join(missing)} (known: {', '.join(library)})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MotionRepairWarning)  # the repairs are in each clip's notes
        loaded = [load_clip(library[c]) for c in clips]
    db = MotionDatabase.build(loaded, dt=settings.dt, mirror=mirror, standing_height=standing_height)
    return LocomotionPlanner(db, settings, limits)


def load_yaml(path: str | Path | None = None) -> dict:
    """The planner's parameters from a ROS parameter file (default: config/planner.yaml)."""
    path = Path(path) if path is not None else config_dir() / CONFIG_FILE
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    try:
        return dict(data[NODE_NAME]["ros__parameters"])
    except (KeyError, TypeError):
        raise ValueError(f"{path}: expected {NODE_NAME}: ros__parameters: {{...}}") from None


def planner_from_yaml(path: str | Path | None = None, **overrides) -> tuple[LocomotionPlanner, dict]:
    """(planner, the node's other settings) from a parameter file, with overrides."""
    clips, settings, limits, rest = split(load_yaml(path) | overrides)
    planner = build_planner(clips, settings, limits, rest["clip_dirs"], rest["mirror_clips"], rest["standing_height"])
    return planner, rest


def feedback_from(rest: dict) -> VelocityFeedback | None:
    """The velocity feedback the parameters ask for (None when ``velocity_feedback`` is off)."""
    if not rest["velocity_feedback"]:
        return None
    return VelocityFeedback(rest["feedback_gain"], (rest["feedback_max_speed"], rest["feedback_max_speed"],
                                                    rest["feedback_max_yaw_rate"]), rest["feedback_settle_s"])
