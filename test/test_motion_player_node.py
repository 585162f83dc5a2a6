"""The motion player node end to end: ``python -m gmt_ros.nodes.motion_player_node`` in a
subprocess with config/motion_player.yaml; this process sends commands, calls the services,
publishes the robot's joints and decodes every window it publishes.

Checked: idle windows are the standing pose; "play walk_stand" blends in from the robot's joints,
then the windows are the clip's frames (found in the clip independently of the player's own
bookkeeping), then blend out to standing; the status walks idle -> blending_in -> playing ->
blending_out -> idle; bad commands change nothing and are logged with what would be valid;
loop / queue / play_next / stop through topic and services; a clip from clip_dirs plays.
"""
import json
import shutil
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
from node_process import NodeProcess, RosPeer, node_rig
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory
from waiting import wait_until

from gmt_ros.core import g1, rotations
from gmt_ros.core.clip_library import resolve_clip
from gmt_ros.core.contract import load_contract
from gmt_ros.core.motion import load_clip
from gmt_ros.core.playback import STANDING_HEIGHT
from gmt_ros.nodes.qos import stream_qos
from gmt_ros.nodes.window_codec import decode_window

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BLEND_S = 0.5  # shorter than the shipped 1 s to keep the test short
ROBOT_Q = g1.DEFAULT_POSE + np.linspace(0.1, -0.1, g1.NUM_BODY_JOINTS)


def _clip(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip(resolve_clip(name))


class PlayerProcess(NodeProcess):
    """The node under test with every topic and service moved under a unique prefix."""

    def __init__(self, **params):
        self.prefix = f"/t{uuid.uuid4().hex[:8]}"
        self.names = {k: f"{self.prefix}/{k}" for k in ("motion_target", "joint_states", "command", "status", "stop",
                                                        "play_next", "loop")}
        params = {"motion_target_topic": self.names["motion_target"], "joint_states_topic": self.names["joint_states"],
                  "blend_in_s": BLEND_S, "blend_out_s": BLEND_S, **params}
        remaps = {f"/gmt/player/{k}": self.names[k] for k in ("command", "status", "stop", "play_next", "loop")}
        super().__init__("gmt_ros.nodes.motion_player_node", "motion_player.yaml", params, remaps)


class Operator(RosPeer):
    """This process's side: robot joints at 50 Hz, commands, service calls, and recorders of
    windows and status."""

    def __init__(self, names):
        super().__init__("player_node_test")
        self.names = names
        self.windows: list[tuple[float, JointTrajectory]] = []
        self.node.create_subscription(JointTrajectory, names["motion_target"], self._on_window,
                                      stream_qos(100))  # the windows are a best-effort stream (gmt_ros.nodes.qos)
        self.node.create_subscription(String, names["status"], self._on_status, 50)
        self.pub_command = self.node.create_publisher(String, names["command"], 10)
        self.pub_joints = self.node.create_publisher(JointState, names["joint_states"], 10)
        self.node.create_timer(0.02, self._send_joints)
        self.clients = {"stop": self.node.create_client(Trigger, names["stop"]),
                        "play_next": self.node.create_client(Trigger, names["play_next"]),
                        "loop": self.node.create_client(SetBool, names["loop"])}
        self.start_spinning()

    def _on_window(self, msg):
        with self.lock:
            self.windows.append((time.monotonic(), msg))

    def _on_status(self, msg):
        with self.lock:
            self.statuses.append(json.loads(msg.data))

    def _send_joints(self):
        self.pub_joints.publish(JointState(name=list(g1.JOINT_NAMES), position=ROBOT_Q.tolist(),
                                           velocity=[0.0] * g1.NUM_BODY_JOINTS))

    def wait_for_node(self, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if (self.node.count_subscribers(self.names["command"]) >= 1
                    and self.node.count_subscribers(self.names["joint_states"]) >= 1
                    and self.windows and self.statuses
                    and all(c.service_is_ready() for c in self.clients.values())):
                time.sleep(0.3)  # a few robot joint messages reach the player
                return
            time.sleep(0.05)
        raise AssertionError("the motion player did not come up")

    def command(self, text):
        self.pub_command.publish(String(data=text))

    def call(self, service, data=None, timeout=5.0):
        client = self.clients[service]
        request = client.srv_type.Request()
        if data is not None:
            request.data = data
        future = client.call_async(request)
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.01)
        assert future.done(), f"service {service} did not answer"
        return future.result()

    def status(self) -> dict:
        with self.lock:
            return dict(self.statuses[-1])

    def windows_since(self, t):
        with self.lock:
            return [m for r, m in self.windows if r >= t]



@pytest.fixture
def rig(request):
    player = PlayerProcess(**getattr(request, "param", {}))
    with node_rig(player, lambda: Operator(player.names)) as pair:
        yield pair


def _assert_standing(msg):
    w = decode_window(msg)
    assert w.joint_mask.all() and len(w.frames) == 121  # window_s 2.4 at dt 0.02
    np.testing.assert_allclose(w.frames.joint_pos, np.tile(g1.DEFAULT_POSE, (121, 1)), atol=1e-12)
    np.testing.assert_allclose(w.frames.root_pos[:, 2], STANDING_HEIGHT, atol=1e-12)
    assert not w.frames.joint_vel.any() and not w.frames.root_lin_vel.any()


TWIST2_REFERENCE = load_contract("twist2_student").reference  # the player's contract by default


def _find_clip_time(clip, q0, mask):
    """The clip time whose joint positions are q0: coarse scan, then a fine one."""
    coarse = np.arange(0.0, clip.duration, 0.002)
    err = np.abs(clip.sample(coarse).joint_pos[:, mask] - q0[mask]).max(axis=1)
    t = coarse[np.argmin(err)]
    fine = np.clip(t + np.arange(-0.003, 0.003, 2e-6), 0.0, clip.duration)
    err = np.abs(clip.sample(fine).joint_pos[:, mask] - q0[mask]).max(axis=1)
    return fine[np.argmin(err)]


def _state_sequence(statuses):
    seq = []
    for s in statuses:
        if not seq or seq[-1] != s["state"]:
            seq.append(s["state"])
    return seq


def test_play_walk_stand_blends_in_plays_the_clip_and_returns_to_standing(rig):
    player, op = rig
    clip = _clip("gmt/walk_stand")
    mask = clip.joint_mask
    assert op.status()["state"] == "idle"
    _assert_standing(op.windows_since(0)[-1])

    sent = time.monotonic()
    op.command("play walk_stand")
    op.wait_status(lambda s: s["state"] == "blending_in")
    # the first window after the command took effect (earlier ones are the idle standing pose)
    first = wait_until(lambda: next((w for w in map(decode_window, op.windows_since(sent))
                                     if np.abs(w.frames.joint_pos[0] - g1.DEFAULT_POSE).max() > 1e-9), None),
                       what="a window of the blend-in")
    # the command publishes at once the window starting where the blend-in starts: the robot's joints
    np.testing.assert_allclose(first.frames.joint_pos[0, mask], ROBOT_Q[mask], atol=1e-12)
    # ... and reaching the clip's first frame after the blend
    np.testing.assert_allclose(first.frames.joint_pos[int(BLEND_S / 0.02), mask], clip.joint_pos[0, mask], atol=1e-9)
    assert first.joint_mask.sum() == 23

    op.wait_status(lambda s: s["state"] == "playing" and s["clip_time"] > 3.0, timeout=10)
    during = [decode_window(m) for m in op.windows_since(time.monotonic() - 1.0)][::10]
    assert len(during) >= 3
    found = []
    for w in during:
        t0 = _find_clip_time(clip, w.frames.joint_pos[0], mask)
        ref = clip.sample(t0 + 0.02 * np.arange(len(w.frames)), TWIST2_REFERENCE)  # the default contract's
        np.testing.assert_allclose(w.frames.joint_pos[:, mask], ref.joint_pos[:, mask], atol=1e-4)
        np.testing.assert_allclose(w.frames.root_pos[:, 2], ref.root_pos[:, 2], atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(w.frames.root_lin_vel[:, :2], axis=1),
                                   np.linalg.norm(ref.root_lin_vel[:, :2], axis=1), atol=1e-3)
        np.testing.assert_allclose(rotations.to_rpy(w.frames.root_quat)[:, :2],
                                   rotations.to_rpy(rotations.normalize(ref.root_quat))[:, :2], atol=1e-4)
        found.append((w.start_time, t0))
    # the clip advances in step with the window stamps (real time, speed 1)
    (s0, c0), (s1, c1) = found[0], found[-1]
    assert c1 - c0 == pytest.approx(s1 - s0, abs=1e-3)

    op.wait_status(lambda s: s["state"] == "idle" and _state_sequence(op.statuses)[-1] == "idle"
                   and "playing" in _state_sequence(op.statuses), timeout=clip.duration + 5)
    assert _state_sequence(op.statuses) == ["idle", "blending_in", "playing", "blending_out", "idle"]
    assert {s["clip"] for s in op.statuses if s["state"] in ("blending_in", "playing")} == {"gmt/walk_stand"}
    idle = time.monotonic()
    _assert_standing(wait_until(lambda: op.windows_since(idle)[-1:], what="a window after the clip")[0])
    player.wait_for_log("command 'play walk_stand': play gmt/walk_stand")


def test_commands_and_services(rig, tmp_path):
    player, op = rig
    op.command("play walk_stnad")
    player.wait_for_log("did you mean gmt/crouchwalk_stand, gmt/walk_stand?")
    op.command("frobnicate now")
    player.wait_for_log("unknown command 'frobnicate'; commands: play NAME, queue NAME, loop NAME, next, stop, list")
    op.command("list")
    player.wait_for_log("clips: gmt/airkick_stand, gmt/basic_walk")
    assert op.status()["state"] == "idle"

    op.command("loop squat")
    s = op.wait_status(lambda s: s["state"] == "blending_in")
    assert (s["clip"], s["loop"]) == ("gmt/squat", True)
    assert op.call("loop", False).success
    op.wait_status(lambda s: s["clip"] == "gmt/squat" and not s["loop"])
    op.command("queue walk_001")
    op.wait_status(lambda s: s["queue"] == ["twist2/walk_001"])
    reply = op.call("play_next")
    assert reply.success and reply.message == "play_next twist2/walk_001"
    s = op.status()
    assert (s["state"], s["clip"], s["queue"]) == ("blending_in", "twist2/walk_001", [])
    reply = op.call("play_next")
    assert not reply.success and "queue is empty" in reply.message
    reply = op.call("stop")
    assert reply.success and op.status()["state"] == "blending_out"
    op.wait_status(lambda s: s["state"] == "idle" and s is op.statuses[-1], timeout=3)
    assert player.proc.poll() is None


@pytest.fixture
def clip_dir(tmp_path):
    shutil.copy(resolve_clip("gmt/squat"), tmp_path / "my_squat.npz")
    return tmp_path


def test_clips_from_clip_dirs_are_served(clip_dir):
    player = PlayerProcess(clip_dirs=f"['{clip_dir}']")
    op = None
    try:
        op = Operator(player.names)
        op.wait_for_node()
        op.command("play my_squat")
        s = op.wait_status(lambda s: s["state"] == "blending_in")
        assert s["clip"] == "my_squat"
    finally:
        if op is not None:
            op.close()
        player.stop()
