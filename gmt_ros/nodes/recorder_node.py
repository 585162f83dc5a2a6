"""gmt_recorder: every topic of the graph (or a chosen set) into one MCAP file, as rosbag2 records.

=====================================  ================================  =========================
work                                   where                             rate
=====================================  ================================  =========================
discovery: new topics → subscriptions  timer                             discovery_period_s (0.25 s)
intake: queued messages → MCAP chunk   timer, all topics in one pass     poll_period_s (20 ms);
(raw CDR, never decoded)                                                 ≈ 1.5 k msg/s in sim2sim
chunk → disk                           timer                             flush_period_s (1 s)
=====================================  ================================  =========================

Everything runs on one thread (a single-threaded executor), so the MCAP writer needs no lock.
The subscriptions live on a second node, ``gmt_recorder_intake``, that no executor spins: the
intake timer takes each topic's queued messages in one batch. Letting the executor wake for every
message costs ≈ 0.4 ms of Python each, 60 % of a core at the sim2sim graph's 1.5 k msg/s; batches
every 20 ms cost a fraction of that (docs/RECORDING.md has the figures). rmw stamps each sample when
DDS receives it, so batching does not blur the times: MCAP ``publish_time`` is the DDS source
timestamp (when the publisher sent it), ``log_time`` the reception time, both system time in ns.
``queue_depth`` must hold what arrives between two intakes (200 = 0.4 s of a 500 Hz topic).

QoS follows the publishers, as rosbag2 does: reliable when every publisher of the topic is
reliable (best effort otherwise, which hears both), transient-local when every publisher is (so the
latched /gmt/supervisor/state is received even when it was published before the recorder started),
keep-last with depth ``queue_depth``. When a later publisher would not match the current
subscription, the subscription is made again with the weaker QoS.

Topics: all non-hidden ones, or those named in ``topics`` plus those matching ``topic_regex``;
``exclude_regex`` removes some. A topic appearing later is picked up at the next discovery (what it
published before that is lost, except latched samples).
SIGINT / SIGTERM stop it cleanly: queued messages are taken, the summary and indexes written.
A recorder killed hard loses at most the last ``flush_period_s``; the file is still readable.
"""
from __future__ import annotations

import datetime
import importlib
import json
import math
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from gmt_ros.adapters import fastdds_profile
from gmt_ros.adapters.mcap_io import McapRecording, RecordingError, normalize_type_name, offered_qos_yaml
from gmt_ros.nodes.gmt_node import GmtNode
from gmt_ros.nodes.node_cli import exit_if_help
from gmt_ros.nodes.parameters import require_positive

NODE_NAME = "gmt_recorder"

# name: (default, type, description)
PARAMETERS = {
    "output": ("", str, "MCAP file to write (must not exist); empty: gmt_<UTC time>.mcap in the working directory"),
    "topics": ([], list, "topics to record by name; with topic_regex empty too: every topic"),
    "topic_regex": ("", str, "also record topics whose full name matches this regular expression"),
    "exclude_regex": ("", str, "never record topics matching this regular expression"),
    "include_hidden": (False, bool, "also record hidden topics (a name part starting with '_')"),
    "queue_depth": (200, int, "subscription history depth: messages buffered while the recorder is busy"),
    "discovery_period_s": (0.25, float, "how often to look for new topics (a new topic loses what it sends before)"),
    "poll_period_s": (0.02, float, "how often to take the queued messages of every topic"),
    "flush_period_s": (1.0, float, "how often to push the chunk in progress to disk"),
}


class RecorderConfigError(ValueError):
    """A parameter value the recorder cannot run with."""


def default_output(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.UTC)
    return f"gmt_{now:%Y%m%d_%H%M%S}.mcap"


def _duration_pair(duration) -> tuple[int, int]:
    ns = duration.nanoseconds
    return divmod(ns, 1_000_000_000)


def qos_record(qos: QoSProfile) -> dict:
    """A publisher's offered QoS in the form :func:`offered_qos_yaml` takes."""
    return {"history": int(qos.history), "depth": int(qos.depth), "reliability": int(qos.reliability),
            "durability": int(qos.durability), "liveliness": int(qos.liveliness),
            "deadline": _duration_pair(qos.deadline), "lifespan": _duration_pair(qos.lifespan),
            "liveliness_lease_duration": _duration_pair(qos.liveliness_lease_duration),
            "avoid_ros_namespace_conventions": bool(qos.avoid_ros_namespace_conventions)}


def request_qos(offered: list[QoSProfile], depth: int) -> QoSProfile:
    """The subscription QoS that hears every one of these publishers (rosbag2's rule)."""
    reliable = bool(offered) and all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
    latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def message_class(type_name: str):
    """The Python class of ``pkg/msg/Type`` (rclpy needs it for the type support even when raw)."""
    pkg, _, name = normalize_type_name(type_name).split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise RecordingError(f"message type {type_name} is not importable here ({exc}); install its package") from None


def is_hidden(topic: str) -> bool:
    return any(part.startswith("_") for part in topic.split("/") if part)


def _not_spun(_msg) -> None:
    raise AssertionError("the recorder's intake node is never spun")


@dataclass
class _Recorded:
    type_name: str
    message_class: type
    channel: int
    qos: QoSProfile
    subscription: object


class RecorderNode(GmtNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, PARAMETERS, RecorderConfigError, **kwargs)
        p = self.params
        require_positive(p, ("discovery_period_s", "poll_period_s", "flush_period_s"), RecorderConfigError)
        if p["queue_depth"] < 1:
            raise RecorderConfigError(f"parameter queue_depth must be at least 1, got {p['queue_depth']}")
        self._wanted = set(p["topics"])
        for name in self._wanted:
            if not name.startswith("/"):
                raise RecorderConfigError(f"parameter topics: {name!r} is not a full topic name (it must start with '/')")
        self._include, self._exclude = self._compile("topic_regex"), self._compile("exclude_regex")
        self.output = Path(p["output"] or default_output())
        self.recording = McapRecording(self.output)  # refuses an existing file, a missing directory
        self.started_ns = time.time_ns()
        self._topics: dict[str, _Recorded] = {}
        # Own arguments only: a `-r __node:=x` for the recorder must not rename this one too.
        self._intake = Node(f"{NODE_NAME}_intake", context=self.context, start_parameter_services=False,
                            use_global_arguments=False)
        self._skipped: dict[str, str] = {}  # topic -> why it is not recorded (logged once)
        self.create_timer(p["discovery_period_s"], self.discover)
        self.create_timer(p["poll_period_s"], self.take_queued)
        self.create_timer(p["flush_period_s"], self.recording.flush)
        what = ("every topic" if not (self._wanted or self._include) else
                ", ".join(sorted(self._wanted) + ([f"/{self._include.pattern}/"] if self._include else [])))
        self.get_logger().info(f"recording {what} to {self.output}")
        self.discover()

    def _compile(self, name: str):
        text = self.params[name]
        if not text:
            return None
        try:
            return re.compile(text)
        except re.error as exc:
            raise RecorderConfigError(f"parameter {name}: {text!r} is not a regular expression ({exc})") from None

    def selected(self, topic: str) -> bool:
        if self._exclude is not None and self._exclude.search(topic):
            return False
        if topic in self._wanted:
            return True
        if self._include is not None:
            return bool(self._include.search(topic))
        return not self._wanted and (self.params["include_hidden"] or not is_hidden(topic))

    # ------------------------------------------------------------------ discovery

    def _skip(self, topic: str, why: str) -> None:
        if self._skipped.get(topic) != why:
            self._skipped[topic] = why
            self.get_logger().error(f"not recording {topic}: {why}")

    def discover(self) -> None:
        """Subscribe to selected topics that have publishers; re-subscribe when a new publisher
        would not match the current QoS."""
        if self.recording.closed:
            return
        for topic, types in self.get_topic_names_and_types():
            if not self.selected(topic):
                continue
            if len(types) != 1:
                self._skip(topic, f"published with several types ({', '.join(types)})")
                continue
            offered = [info.qos_profile for info in self.get_publishers_info_by_topic(topic)]
            if not offered:
                continue  # subscribers only: nothing to record yet, and no QoS to match
            try:
                self._subscribe(topic, types[0], offered)
            except RecordingError as exc:
                self._skip(topic, str(exc))

    def _subscribe(self, topic: str, type_name: str, offered: list[QoSProfile]) -> None:
        qos = request_qos(offered, self.params["queue_depth"])
        current = self._topics.get(topic)
        if current is not None:
            if current.type_name != type_name:
                self._skip(topic, f"type changed from {current.type_name} to {type_name}")
                return
            if (current.qos.reliability, current.qos.durability) == (qos.reliability, qos.durability):
                return
            # Only ever weakens (a new publisher that the old request would not match): a
            # best-effort / volatile subscription already hears every publisher.
            stronger = ((qos.reliability == ReliabilityPolicy.RELIABLE) > (current.qos.reliability == ReliabilityPolicy.RELIABLE)
                        or (qos.durability == DurabilityPolicy.TRANSIENT_LOCAL)
                        > (current.qos.durability == DurabilityPolicy.TRANSIENT_LOCAL))
            if stronger:
                return
            self._intake.destroy_subscription(current.subscription)
            self.get_logger().info(f"{topic}: a publisher offers weaker QoS; now {qos.reliability.name.lower()}, "
                                   f"{qos.durability.name.lower()}")
            cls, channel = current.message_class, current.channel
        else:
            cls = message_class(type_name)  # before add_topic: no channel for a type that cannot be subscribed
            channel = self.recording.add_topic(topic, type_name, offered_qos_yaml(qos_record(q) for q in offered))
        # Never called: nothing spins the intake node; take_queued takes the messages.
        subscription = self._intake.create_subscription(cls, topic, _not_spun, qos, raw=True)
        self._topics[topic] = _Recorded(type_name, cls, channel, qos, subscription)
        if current is None:
            self.get_logger().info(f"recording {topic} ({type_name}, {qos.reliability.name.lower()}, "
                                   f"{qos.durability.name.lower()})")

    # ------------------------------------------------------------------ intake

    def take_queued(self) -> int:
        """Write every message queued on every subscription; the number written."""
        if self.recording.closed:
            return 0
        written = 0
        for rec in self._topics.values():
            sub = rec.subscription
            for _ in range(self.params["queue_depth"] + 1):  # bounded: a flood cannot starve the others
                with sub.handle:
                    taken = sub.handle.take_message(sub.msg_type, True)
                if taken is None:
                    break
                data, info = taken
                received = info.get("received_timestamp") or time.time_ns()
                self.recording.write(rec.channel, data, received, info.get("source_timestamp") or received,
                                     info.get("publication_sequence_number") or 0)
                written += 1
        return written

    # ------------------------------------------------------------------ closing

    def summary(self) -> dict:
        counts = dict(self.recording.counts)
        return {"output": str(self.output), "seconds": round((time.time_ns() - self.started_ns) * 1e-9, 3),
                "messages": sum(counts.values()), "topics": counts,
                "requested_not_seen": sorted(t for t in self._wanted if t not in counts),
                "not_recorded": dict(self._skipped)}

    def close(self) -> dict:
        """Write the summary, indexes and the recorder's own metadata; idempotent."""
        if self.recording.closed:
            return self.summary()
        self.take_queued()
        summary = self.summary()
        self.recording.add_metadata("gmt_ros.recorder", {
            "node": self.get_fully_qualified_name(),
            "started_ns": str(self.started_ns),
            "requested_topics": json.dumps(sorted(self._wanted)),
            "topic_regex": self.params["topic_regex"],
            "exclude_regex": self.params["exclude_regex"],
            "requested_not_seen": json.dumps(summary["requested_not_seen"]),
            "not_recorded": json.dumps(summary["not_recorded"]),
        })
        self.recording.close()
        return summary

    def destroy_node(self) -> None:
        # Also reached from rclpy's context shutdown, possibly for a node whose __init__ failed.
        if getattr(self, "recording", None) is not None:
            self.close()
        intake, self._intake = getattr(self, "_intake", None), None
        if intake is not None:
            intake.destroy_node()
        super().destroy_node()


def spin_until(node: RecorderNode, executor, stop: threading.Event, seconds: float | None = None,
               drain_s: float = 0.1) -> None:
    """Spin until ``stop`` is set or ``seconds`` have passed, then ``drain_s`` more, so messages
    in flight when the stop came are still taken (close() takes the last queued ones)."""
    deadline = time.monotonic() + seconds if seconds is not None else math.inf
    while not stop.is_set() and rclpy.ok(context=node.context) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=min(0.1, max(0.0, deadline - time.monotonic())))
    end = time.monotonic() + drain_s
    while time.monotonic() < end and rclpy.ok(context=node.context):
        executor.spin_once(timeout_sec=max(0.0, end - time.monotonic()))


def record(parameter_overrides: list[Parameter] | None = None, seconds: float | None = None, args=None) -> dict:
    """Run a recorder in this process until SIGINT/SIGTERM (or ``seconds``); the summary dict.
    Raises RecorderConfigError / RecordingError for bad parameters before anything is recorded."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    # rclpy's own handlers would shut the context down mid-write; ours only ask the loop to end.
    fastdds_profile.apply()
    context = rclpy.Context()
    rclpy.init(args=args, context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = RecorderNode(context=context, parameter_overrides=parameter_overrides or [])
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        spin_until(node, executor, stop, seconds)
        summary = node.close()
        node.get_logger().info(f"wrote {summary['messages']} messages on {len(summary['topics'])} topics to "
                               f"{summary['output']} ({summary['seconds']:.1f} s)")
        if summary["requested_not_seen"]:
            node.get_logger().warning(f"requested topics never published: {', '.join(summary['requested_not_seen'])}")
        return summary
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv=None) -> int:
    exit_if_help(argv, "gmt-ros-recorder", NODE_NAME, __doc__, PARAMETERS, None)
    argv = sys.argv if argv is None else argv
    try:
        record(args=argv)
    except (RecorderConfigError, RecordingError) as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

