"""What a graph run watches from the ROS side (``GraphObserver``): the supervisor's and the
sources' status, the motion-target windows (the scoring reference), the PD targets, diagnostics,
and the player command publisher. Shared by ``gmt-ros sim2sim``, the fault suite and ``gmt-ros
operate`` (which imports only this, not the sim2sim runner)."""
from __future__ import annotations

import json
import struct
import threading
import time

import numpy as np

from gmt_ros.tools.process_graph import Sim2SimError

# ------------------------------------------------------------------------------------------------
# Motion-target windows: frame 0 straight from the serialized message


def _cdr_reader(raw: bytes):
    """Little-endian plain CDR (what rmw_fastrtps sends): offsets are relative to the payload
    after the 4-byte encapsulation header."""
    if len(raw) < 4 or raw[:2] != b"\x00\x01":
        raise ValueError(f"not little-endian plain CDR (encapsulation {raw[:2].hex()})")
    buf = memoryview(raw)[4:]
    pos = [0]

    def align(n):
        pos[0] = (pos[0] + n - 1) // n * n

    def u32():
        align(4)
        (v,) = struct.unpack_from("<I", buf, pos[0])
        pos[0] += 4
        return v

    def string():
        n = u32()
        s = bytes(buf[pos[0]:pos[0] + n - 1]).decode()
        pos[0] += n
        return s

    def doubles():
        n = u32()
        if n == 0:
            return np.zeros(0)
        align(8)
        out = np.frombuffer(buf, dtype="<f8", count=n, offset=pos[0]).copy()
        pos[0] += 8 * n
        return out

    return u32, string, doubles


def window_frames(raw: bytes, count: int = 2) -> list[tuple]:
    """The first ``count`` points of a serialized trajectory_msgs/JointTrajectory window
    (docs/MOTION_TARGET.md) as (wall time, root_pos, root_quat, root_lin_vel, root_ang_vel,
    joint_pos (29), joint_mask (29)), without deserializing the points behind them. Raises
    ValueError (or KeyError for a missing floating-base column) when it cannot."""
    from gmt_ros.core import g1
    from gmt_ros.nodes.window_codec import FLOATING_BASE_JOINTS

    u32, string, doubles = _cdr_reader(raw)
    sec, nanosec = u32(), u32()
    stamp = (sec - (1 << 32) if sec >= 1 << 31 else sec) + nanosec * 1e-9
    string()  # frame_id
    names = [string() for _ in range(u32())]
    col = {n: i for i, n in enumerate(names)}
    base = [col[n] for n in FLOATING_BASE_JOINTS]
    joints = [(i, g1.SLOT_OF[n]) for n, i in col.items() if n in g1.SLOT_OF]
    cols = np.array([i for i, _ in joints], dtype=np.int64)
    slots = np.array([slot for _, slot in joints], dtype=np.int64)
    mask = np.zeros(g1.NUM_BODY_JOINTS, dtype=bool)
    mask[slots] = True
    out = []
    for _ in range(min(count, u32())):
        positions, velocities = doubles(), doubles()
        doubles(), doubles()  # accelerations, effort
        t_sec, t_nanosec = u32(), u32()
        if len(positions) != len(names) or len(velocities) != len(names):
            raise ValueError("window point without one position and one velocity per name")
        joint_pos = np.zeros(g1.NUM_BODY_JOINTS)
        joint_pos[slots] = positions[cols]
        quat = positions[base[3:7]]
        out.append((stamp + t_sec + t_nanosec * 1e-9, positions[base[:3]], quat / np.linalg.norm(quat),
                    velocities[base[:3]], velocities[base[4:7]], joint_pos, mask.copy()))
    if not out:
        raise ValueError("window without points")
    return out


def _decoded_frames(raw: bytes, count: int = 2) -> list[tuple]:
    """The same through the full decoder (the check on the fast path, and its fallback)."""
    from rclpy.serialization import deserialize_message
    from trajectory_msgs.msg import JointTrajectory

    from gmt_ros.nodes.window_codec import decode_window

    w = decode_window(deserialize_message(raw, JointTrajectory), dt=0.02)
    f, mask = w.frames, np.asarray(w.joint_mask, dtype=bool)
    return [(w.start_time + i * w.dt, f.root_pos[i], f.root_quat[i], f.root_lin_vel[i], f.root_ang_vel[i],
             f.joint_pos[i], mask.copy()) for i in range(min(count, len(f)))]


def _same_frames(a, b) -> bool:
    return len(a) == len(b) and all(
        abs(x[0] - y[0]) < 1e-6 and all(np.allclose(u, v, atol=1e-9) for u, v in zip(x[1:], y[1:])) for x, y in zip(a, b))


# ------------------------------------------------------------------------------------------------
# The runner's own ROS node


class GraphObserver:
    """An rclpy node in its own context, spun on a background thread; callbacks only append."""

    CHECKED_WINDOWS = 3  # the fast window parser is checked against the full decoder on these
    FRAMES_PER_WINDOW = 2  # reference samples every 20 ms with windows at 25 Hz (lighter_settings)

    def __init__(self, ros_domain: int, windows: bool = True, targets: bool = True):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import Twist
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray, String
        from trajectory_msgs.msg import JointTrajectory

        from gmt_ros.adapters import fastdds_profile
        from gmt_ros.nodes.qos import stream_qos

        self._rclpy = rclpy
        fastdds_profile.apply()
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=ros_domain)
        # No parameter services and no /rosout: every endpoint is announced to every node of the
        # graph when this process joins, and discovery is what costs the running graph (see
        # gmt_ros.nodes.qos).
        self.node = rclpy.create_node("gmt_sim2sim_runner", context=self.context, start_parameter_services=False,
                                      enable_rosout=False)
        self.lock = threading.Lock()
        self.supervisor: list[tuple[float, dict]] = []  # (receipt time, state) on every mode/fault change
        self.supervisor_latest: dict | None = None
        self.player: list[tuple[float, dict]] = []
        self.player_latest: dict | None = None
        self.stream: list[tuple[float, dict]] = []  # gmt_stream's status (graph source "stream")
        self.stream_latest: dict | None = None
        self.planner: list[tuple[float, dict]] = []  # gmt_planner's status (graph source "planner")
        self.planner_latest: dict | None = None
        self.stream_timing: list[list[float]] = []  # [window stamp, arrival times of the frames it first carries]
        self.window_receipts: list[tuple[float, float]] = []  # (window stamp, receipt time here)
        self.windows: list[tuple] = []  # window_frames tuples, the reference at known wall times
        self._checked = 0
        self.window_parser = "raw"
        self.window_errors = 0
        self.target_times: list[float] = []  # receipt (wall clock) of each /gmt/joint_targets
        self.target_stamps: list[float] = []  # its header.stamp: what the bridge ages it from
        self.diagnostics: dict[str, tuple[float, str, dict]] = {}  # node -> (time, message, values)
        self.diagnostics_history: list[tuple[float, str, dict]] = []  # (time, node, values), 1 Hz per node

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        streams = stream_qos(50)  # as the graph's own readers (gmt_ros.nodes.qos): never a reliable reader of a stream
        n = self.node
        n.create_subscription(String, "/gmt/supervisor/state", self._on_supervisor, latched)
        n.create_subscription(String, "/gmt/player/status", self._on_player, reliable)
        n.create_subscription(String, "/gmt/stream/status", self._on_stream, reliable)
        n.create_subscription(String, "/gmt/planner/status", self._on_planner, reliable)
        n.create_subscription(Float64MultiArray, "/gmt/stream/timing", self._on_stream_timing, streams)
        if windows:  # the reference for scoring (gmt-ros operate needs none)
            n.create_subscription(JointTrajectory, "/gmt/motion_target", self._on_window, streams, raw=True)
        if targets:  # counted only (gmt-ros operate needs none)
            n.create_subscription(JointState, "/gmt/joint_targets", self._on_target, streams, raw=True)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
        self.command_pub = n.create_publisher(String, "/gmt/player/command", reliable)
        self._twist = Twist
        self.cmd_vel_pub = n.create_publisher(Twist, "/cmd_vel", reliable)
        self._clients = {}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="sim2sim-observer", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # the context is shut down at close()
            pass

    # -- callbacks (executor thread) --------------------------------------------------------------

    def _on_supervisor(self, msg) -> None:
        now = time.time()
        try:
            state = json.loads(msg.data)
        except ValueError:
            return
        with self.lock:
            last = self.supervisor[-1][1] if self.supervisor else None
            if last is None or (last["mode"], last["fault"]) != (state.get("mode"), state.get("fault")):
                self.supervisor.append((now, state))
            self.supervisor_latest = state

    def _on_player(self, msg) -> None:
        self._on_status(msg, "player")

    def _on_stream(self, msg) -> None:
        self._on_status(msg, "stream")

    def _on_planner(self, msg) -> None:
        self._on_status(msg, "planner")

    def _on_status(self, msg, source: str) -> None:
        """A source node's JSON status: appended to ``self.<source>``, kept as ``<source>_latest``."""
        now = time.time()
        try:
            status = json.loads(msg.data)
        except ValueError:
            return
        with self.lock:
            getattr(self, source).append((now, status))
            setattr(self, f"{source}_latest", status)

    def _on_stream_timing(self, msg) -> None:
        with self.lock:
            self.stream_timing.append(list(msg.data))

    def _on_window(self, raw: bytes) -> None:
        received = time.time()
        n = self.FRAMES_PER_WINDOW
        try:
            if self.window_parser == "raw":
                frames = window_frames(raw, n)
                if self._checked < self.CHECKED_WINDOWS:
                    self._checked += 1
                    if not _same_frames(frames, _decoded_frames(raw, n)):
                        self.window_parser = "decoded"
                        frames = _decoded_frames(raw, n)
            else:
                frames = _decoded_frames(raw, n)
        except (ValueError, KeyError, IndexError, struct.error):
            try:
                frames = _decoded_frames(raw, n)
                self.window_parser = "decoded"
            except ValueError:
                self.window_errors += 1
                return
        with self.lock:
            self.windows.extend(frames)
            self.window_receipts.append((frames[0][0], received))

    def _on_target(self, raw: bytes) -> None:
        t = time.time()
        # Serialized JointState: 4-byte CDR encapsulation, then header.stamp (int32 sec, uint32 nanosec).
        sec, nanosec = struct.unpack_from("<iI" if raw[1] == 1 else ">iI", raw, 4)
        stamp = sec + nanosec * 1e-9
        with self.lock:
            self.target_times.append(t)
            self.target_stamps.append(stamp)

    def _on_diagnostics(self, msg) -> None:
        now = time.time()
        with self.lock:
            for status in msg.status:
                node = status.name.split(":", 1)[0]
                values = {kv.key: kv.value for kv in status.values}
                self.diagnostics[node] = (now, status.message, values)
                self.diagnostics_history.append((now, node, values))

    # -- main thread ------------------------------------------------------------------------------

    def snapshot(self, what: str):
        with self.lock:
            value = getattr(self, what)
            return list(value) if isinstance(value, list) else (dict(value) if isinstance(value, dict) else value)

    def publish_command(self, text: str, match_timeout_s: float = 10.0) -> None:
        from std_msgs.msg import String

        deadline = time.monotonic() + match_timeout_s
        while self.command_pub.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                raise Sim2SimError(f"nobody subscribes to /gmt/player/command after {match_timeout_s:.0f} s")
            time.sleep(0.05)
        self.command_pub.publish(String(data=text))

    def wait_for_cmd_vel_subscriber(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.cmd_vel_pub.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                raise Sim2SimError(f"nobody subscribes to /cmd_vel after {timeout_s:.0f} s")
            time.sleep(0.05)

    def publish_velocity(self, velocity) -> None:
        """geometry_msgs/Twist on /cmd_vel: vx, vy, wz."""
        msg = self._twist()
        msg.linear.x, msg.linear.y, msg.angular.z = (float(v) for v in velocity)
        self.cmd_vel_pub.publish(msg)

    def call_trigger(self, service: str, timeout_s: float = 5.0):
        """(success, message) of a std_srvs/Trigger call."""
        from std_srvs.srv import Trigger

        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self.node.create_client(Trigger, service)
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise Sim2SimError(f"service {service} not available after {timeout_s:.0f} s")
        done = threading.Event()
        future = client.call_async(Trigger.Request())
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout_s):
            raise Sim2SimError(f"service {service} did not answer within {timeout_s:.0f} s")
        result = future.result()
        return result.success, result.message

    def close(self) -> None:
        try:
            self.executor.shutdown(timeout_sec=1.0)
        except Exception:
            pass
        try:
            self.node.destroy_node()
        except Exception:
            pass
        self._rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=2.0)
