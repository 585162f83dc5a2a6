"""gmt_motion_player: plays library clips as motion targets (gmt_ros.core.playback does the work).

==========================================  ===================================  ==============
work                                        topic / service                      rate
==========================================  ===================================  ==============
window of the plan → JointTrajectory        /gmt/motion_target (out)             rate_hz (50)
status JSON (state, clip, clip_time, ...)   /gmt/player/status (out)             status_rate_hz
                                                                                 and on change
commands "play|queue|loop NAME", "next",    /gmt/player/command (std_msgs/String) on demand
"stop", "list"
stop / play next / loop on-off              /gmt/player/stop, /play_next         on demand
                                            (std_srvs/Trigger), /loop (SetBool)
robot joints for blend-in                   /joint_states (best effort, depth 1) robot rate
==========================================  ===================================  ==============

One single-threaded executor: every callback is short (a window is ~120 frames), except loading
a clip the first time it is played (tens of ms), which only delays the next window.
Windows are stamped with the ROS clock (system time), the consumer's clock. Clips are prepared by
the reference conventions of the policy contract named by ``contract`` (the policy node's:
velocities, stored or unit quaternions; ``gmt_ros.core.reference``), which the launch files set
from the same ``policy`` argument. The library is the
shipped clips (models/motions) plus every directory in clip_dirs; names are as
``gmt_ros.core.clip_library`` gives them ("gmt/walk_stand"), a unique last part ("walk_stand")
works too. A bad command is logged with what would have been valid and changes nothing.
"""
from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from gmt_ros.core import g1
from gmt_ros.core.clip_library import list_clips
from gmt_ros.core.contract import load_contract
from gmt_ros.core.playback import STANDING_HEIGHT, MotionPlayer
from gmt_ros.nodes.gmt_node import GmtNode
from gmt_ros.nodes.parameters import require_positive
from gmt_ros.nodes.qos import STREAM_QOS
from gmt_ros.nodes.run import NodeHelp, run_node
from gmt_ros.nodes.window_codec import encode_window

NODE_NAME = "gmt_motion_player"
COMMANDS = ("play NAME", "queue NAME", "loop NAME", "next", "stop", "list")

# name: (default, type, description)
PARAMETERS = {
    "contract": ("twist2_student", str, "the policy's contract (models/<name>/contract.yaml or a path): "
                                        "its reference conventions prepare the clips"),
    "clip_dirs": ([""], list, "extra directories of clips (.npz/.pkl) besides the shipped models/motions"),
    "rate_hz": (50.0, float, "motion target publish rate"),
    "window_s": (2.4, float, "seconds of motion ahead in each window: GMT reads 1.9 s ahead, and a window "
                             "may be up to window_max_age_s (0.5 s) old when the policy uses it; TWIST2 reads 0.02 s"),
    "dt": (0.02, float, "frame step of the windows (the policies' control step)"),
    "blend_in_s": (1.0, float, "ease from the robot's joints into a clip's first frame"),
    "blend_out_s": (1.0, float, "ease from the end of a clip (or a stop) to the standing pose"),
    "standing_height": (STANDING_HEIGHT, float, "pelvis height of the idle standing reference (m)"),
    "status_rate_hz": (5.0, float, "status publish rate (also published on every change)"),
    "joint_state_max_age_s": (0.5, float, "older /joint_states are not used for blend-in"),
    "motion_target_topic": ("/gmt/motion_target", str, "trajectory_msgs/JointTrajectory windows (out)"),
    "joint_states_topic": ("/joint_states", str, "sensor_msgs/JointState, the robot's joints for blend-in"),
}

STATE_QOS = STREAM_QOS
WINDOW_QOS = STREAM_QOS  # never waits for a reader (gmt_ros.nodes.qos)
COMMAND_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)


class PlayerConfigError(ValueError):
    """A parameter value the player cannot run with."""


class MotionPlayerNode(GmtNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, PARAMETERS, PlayerConfigError, **kwargs)
        p = self.params
        require_positive(p, ("rate_hz", "window_s", "dt", "status_rate_hz", "joint_state_max_age_s"), PlayerConfigError)
        self.n_frames = int(math.floor(p["window_s"] / p["dt"] + 1e-9)) + 1
        if self.n_frames < 2:
            raise PlayerConfigError(f"window_s {p['window_s']} is shorter than one dt {p['dt']}")
        clip_dirs = [d for d in p["clip_dirs"] if d]
        library = list_clips(clip_dirs)
        try:
            conventions = load_contract(p["contract"]).reference
        except (OSError, ValueError) as exc:
            raise PlayerConfigError(f"parameter contract: {exc}") from None
        self.player = MotionPlayer(library, blend_in_s=p["blend_in_s"], blend_out_s=p["blend_out_s"],
                                   standing_height=p["standing_height"], conventions=conventions)
        self._joints = None  # (receipt monotonic time, pos (29,))
        self._joint_cols: tuple[tuple[str, ...], np.ndarray] | None = None
        self._last_status: dict | None = None

        self._pub_window = self.create_publisher(JointTrajectory, p["motion_target_topic"], WINDOW_QOS)
        self._pub_status = self.create_publisher(String, "/gmt/player/status", 10)
        self.create_subscription(String, "/gmt/player/command", self._on_command, COMMAND_QOS)
        # Polled when a command needs the robot's joints, not delivered at the bridge's 100 Hz
        # (the executor's CPU per message; see gmt_ros.nodes.polled_topics).
        readers = self.polled_topics(f"{NODE_NAME}_state_reader")
        self._joint_states_in = readers.subscribe(JointState, p["joint_states_topic"], STATE_QOS)
        self.create_service(Trigger, "/gmt/player/stop", self._srv_stop)
        self.create_service(Trigger, "/gmt/player/play_next", self._srv_play_next)
        self.create_service(SetBool, "/gmt/player/loop", self._srv_loop)
        self.create_timer(1.0 / p["rate_hz"], self._on_tick)
        self.create_timer(1.0 / p["status_rate_hz"], lambda: self._publish_status(force=True))
        self.get_logger().info(
            f"{len(library)} clips ({', '.join(library) or 'none'}); windows of {self.n_frames} frames at "
            f"{p['rate_hz']:g} Hz on {p['motion_target_topic']}; commands on /gmt/player/command: {', '.join(COMMANDS)}"
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ inputs

    def _on_joint_states(self, msg: JointState, received: float | None = None) -> None:
        received = time.monotonic() if received is None else received
        names = tuple(msg.name)
        if self._joint_cols is None or self._joint_cols[0] != names:
            index = {n: i for i, n in enumerate(names)}
            if any(n not in index for n in g1.JOINT_NAMES) or len(msg.position) != len(names):
                self.get_logger().warning("ignoring /joint_states without all 29 G1 joints", throttle_duration_sec=5.0)
                return
            self._joint_cols = (names, np.array([index[n] for n in g1.JOINT_NAMES], dtype=np.int64))
        if len(msg.position) != len(names):
            return
        q = np.asarray(msg.position, dtype=np.float64)[self._joint_cols[1]]
        if np.all(np.isfinite(q)):
            self._joints = (received, q)

    def _robot_joints(self):
        try:
            got = self._joint_states_in.take_newest()
        except Exception as exc:  # an undecodable sample: keep the previous one
            self.get_logger().warning(f"could not take a joint-state sample: {exc!r}", throttle_duration_sec=5.0)
            got = None
        if got is not None:
            self._on_joint_states(*got)
        if self._joints is None or time.monotonic() - self._joints[0] > self.params["joint_state_max_age_s"]:
            return None
        return self._joints[1]

    def execute(self, text: str) -> str:
        """Run one text command; returns what happened, raises ValueError for a bad command.
        A command that changes the plan publishes the new window at once, starting at the moment
        the command took effect (a blend-in's first frame is exactly the robot's joints)."""
        words = text.split()
        if not words:
            raise ValueError(f"empty command; commands: {', '.join(COMMANDS)}")
        verb, args = words[0].lower(), words[1:]
        if verb not in ("play", "queue", "loop", "stop", "next", "play_next", "list"):
            raise ValueError(f"unknown command {verb!r}; commands: {', '.join(COMMANDS)}")
        if verb in ("play", "queue", "loop"):
            if len(args) != 1:
                raise ValueError(f"'{verb}' takes one clip name, got {len(args)} words; e.g. '{verb} walk_stand'")
            self.player.clip(args[0])  # load (and check the name) before taking the time
        elif args:
            raise ValueError(f"'{verb}' takes no arguments")
        if verb == "list":
            return "clips: " + ", ".join(self.player.library)
        now = self._now()
        self.player.observe_joints(self._robot_joints())
        if verb in ("play", "queue", "loop"):
            {"play": self.player.play, "queue": self.player.queue, "loop": self.player.loop_clip}[verb](args[0], now)
            result = f"{verb} {self.player.resolve(args[0])}"
        elif verb == "stop":
            self.player.stop(now)
            result = "stop"
        else:
            result = f"play_next {self.player.play_next(now)}"
        self._publish_window(now)
        return result

    def _on_command(self, msg: String) -> None:
        try:
            result = self.execute(msg.data)
        except ValueError as exc:
            self.get_logger().error(f"command {msg.data!r} refused: {exc}")
            return
        self.get_logger().info(f"command {msg.data!r}: {result}")
        self._publish_status()

    def _srv_stop(self, request, response):
        return self._trigger(response, "stop")

    def _srv_play_next(self, request, response):
        return self._trigger(response, "next")

    def _trigger(self, response, command: str):
        try:
            response.message = self.execute(command)
            response.success = True
        except ValueError as exc:
            response.success, response.message = False, str(exc)
        self._publish_status()
        return response

    def _srv_loop(self, request, response):
        self.player.set_loop(request.data)
        response.success, response.message = True, f"loop {'on' if request.data else 'off'}"
        self._publish_status()
        return response

    # ------------------------------------------------------------------ outputs

    def _on_tick(self) -> None:
        self._publish_window(self._now())
        self._publish_status()

    def _publish_window(self, now: float) -> None:
        window = self.player.window(now, n=self.n_frames, dt=self.params["dt"])
        self._pub_window.publish(encode_window(window))

    def _publish_status(self, force: bool = False) -> None:
        """Publish when the state, clip or queue changed, or when forced (the periodic status)."""
        status = self.player.status(self._now())
        key = {k: v for k, v in status.items() if k != "clip_time"}
        if force or key != self._last_status:
            self._last_status = key
            self._pub_status.publish(String(data=json.dumps(status)))


def main(argv=None) -> int:
    return run_node(MotionPlayerNode, NODE_NAME, argv, short_switch_interval=False,
                    help=NodeHelp("gmt-ros-player", __doc__, PARAMETERS, "motion_player.yaml"))


if __name__ == "__main__":
    sys.exit(main())
