"""Recordings as MCAP files in the ros2 profile, readable by rosbag2, Foxglove and ``mcap``.

Writing (:class:`McapRecording`) takes messages already serialized as CDR (what a raw rclpy
subscription hands over), so nothing is decoded on the recording path. Each topic's schema is the
``ros2msg`` text rosbag2 stores: the type's .msg file followed by every type it depends on, each
after a line of 80 ``=`` and a ``MSG: pkg/msg/Type`` line. The .msg files come from the ROS
packages' ``share/<pkg>/msg`` directories (the pip wheels install them under the venv's ``share``).

Reading (:func:`read_messages`) needs neither ROS nor rclpy: mcap-ros2-support decodes CDR with the
stored schemas into objects whose attributes are the ROS field names.

No rclpy here; the recorder node is a thin shell over :class:`McapRecording`.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcap.exceptions import McapError
from mcap.reader import NonSeekingReader, make_reader
from mcap.writer import CompressionType, Writer
from mcap_ros2.decoder import DecoderFactory

PROFILE = "ros2"
SCHEMA_ENCODING = "ros2msg"
MESSAGE_ENCODING = "cdr"
SEPARATOR = "=" * 80
PRIMITIVE_TYPES = frozenset({
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
    "int32", "uint32", "int64", "uint64", "string", "wstring",
})
_TYPE_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)/(?:msg/)?([A-Za-z][A-Za-z0-9_]*)$")


class RecordingError(ValueError):
    """A recording that cannot be written or read as asked (the message names the problem)."""


# ----------------------------------------------------------------------------- message definitions

def normalize_type_name(type_name: str) -> str:
    """``pkg/msg/Type`` for ``pkg/msg/Type`` or ``pkg/Type``; anything else is refused."""
    match = _TYPE_NAME.match(type_name or "")
    if not match:
        raise RecordingError(f"{type_name!r} is not a ROS message type name (expected pkg/msg/Type)")
    return f"{match.group(1)}/msg/{match.group(2)}"


def definition_prefixes() -> list[Path]:
    """Install prefixes whose ``share/<pkg>/msg`` may hold .msg files: AMENT_PREFIX_PATH (a sourced
    ROS 2 host), then this Python's prefix (the pip wheels)."""
    out: list[Path] = []
    for entry in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) + [sys.prefix, sys.base_prefix]:
        if entry and Path(entry) not in out:
            out.append(Path(entry))
    return out


def find_definition_file(type_name: str, prefixes: Iterable[Path] | None = None) -> Path:
    pkg, _, name = normalize_type_name(type_name).split("/")
    searched = list(prefixes) if prefixes is not None else definition_prefixes()
    for prefix in searched:
        path = Path(prefix) / "share" / pkg / "msg" / f"{name}.msg"
        if path.is_file():
            return path
    raise RecordingError(f"no {name}.msg for {pkg}/msg/{name} under share/{pkg}/msg in "
                         f"{', '.join(str(p) for p in searched) or '(no prefixes)'}; is the {pkg} package installed?")


def field_types(text: str, package: str) -> list[str]:
    """The non-primitive types (``pkg/msg/Type``) the fields of a .msg text use, in order, once
    each. Types without a package are the message's own package's, as in rosidl."""
    out: list[str] = []
    for line in text.splitlines():
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        base = re.sub(r"\[[^\]]*\]$", "", body.split()[0])  # strip [], [N], [<=N]
        base = base.split("<=", 1)[0]  # bounded string<=N
        if base in PRIMITIVE_TYPES:
            continue
        full = normalize_type_name(base if "/" in base else f"{package}/{base}")
        if full not in out:
            out.append(full)
    return out


def message_definition(type_name: str, prefixes: Iterable[Path] | None = None) -> str:
    """The complete ``ros2msg`` definition of a type: its .msg text, then each dependency (depth
    first, once each) after the rosbag2 delimiter."""
    prefixes = list(prefixes) if prefixes is not None else definition_prefixes()
    top = normalize_type_name(type_name)
    texts: dict[str, str] = {}

    def visit(name: str) -> None:
        if name in texts:
            return
        texts[name] = find_definition_file(name, prefixes).read_text()
        for dep in field_types(texts[name], name.split("/")[0]):
            visit(dep)

    visit(top)
    parts = [texts[top].rstrip("\n") + "\n"]
    for name, text in texts.items():
        if name != top:
            parts.append(f"{SEPARATOR}\nMSG: {name}\n{text.rstrip(chr(10))}\n")
    return "".join(parts)


def offered_qos_yaml(profiles: Iterable[dict[str, Any]]) -> str:
    """rosbag2's ``offered_qos_profiles`` channel metadata (its integer-enum form, which every
    rosbag2 release reads). Each profile: history, depth, reliability, durability, liveliness (the
    rmw enum values) and deadline/lifespan/liveliness_lease_duration as (sec, nsec)."""
    lines = []
    for p in profiles:
        lines += [f"- history: {int(p['history'])}", f"  depth: {int(p['depth'])}",
                  f"  reliability: {int(p['reliability'])}", f"  durability: {int(p['durability'])}"]
        for key in ("deadline", "lifespan"):
            sec, nsec = p[key]
            lines += [f"  {key}:", f"    sec: {int(sec)}", f"    nsec: {int(nsec)}"]
        lines.append(f"  liveliness: {int(p['liveliness'])}")
        sec, nsec = p["liveliness_lease_duration"]
        lines += ["  liveliness_lease_duration:", f"    sec: {int(sec)}", f"    nsec: {int(nsec)}",
                  f"  avoid_ros_namespace_conventions: {'true' if p.get('avoid_ros_namespace_conventions') else 'false'}"]
    return "\n".join(lines) + ("\n" if lines else "")


# ----------------------------------------------------------------------------- writing

class McapRecording:
    """One MCAP file being written: ``add_topic`` once per topic, then ``write`` serialized CDR.

    Chunks are zstd-compressed; ``flush`` closes the chunk in progress and pushes it to disk, so a
    recorder killed without ``close`` loses only what came after its last flush (the file then
    lacks its summary; :func:`read_messages` still reads it). ``close`` writes the summary and
    indexes; it is idempotent.
    """

    def __init__(self, path: str | Path, overwrite: bool = False, library: str = "gmt_ros recorder",
                 definition_prefixes_: Iterable[Path] | None = None):
        self.path = Path(path)
        if self.path.suffix != ".mcap":
            raise RecordingError(f"recording file must end in .mcap, got {self.path}")
        if self.path.exists() and not overwrite:
            raise RecordingError(f"{self.path} already exists; choose another name or remove it")
        if not self.path.parent.is_dir():
            raise RecordingError(f"directory {self.path.parent} does not exist")
        self._prefixes = list(definition_prefixes_) if definition_prefixes_ is not None else definition_prefixes()
        self._stream = open(self.path, "wb")
        self._writer = Writer(self._stream, compression=CompressionType.ZSTD)
        self._writer.start(profile=PROFILE, library=library)
        self._schemas: dict[str, int] = {}
        self.channels: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self._topic_of: dict[int, str] = {}
        self.closed = False

    def add_topic(self, topic: str, type_name: str, qos_yaml: str = "") -> int:
        """Channel id for ``topic``; raises RecordingError when the type's .msg files are missing."""
        if self.closed:
            raise RecordingError(f"{self.path} is closed")
        if topic in self.channels:
            return self.channels[topic]
        full = normalize_type_name(type_name)
        if full not in self._schemas:
            text = message_definition(full, self._prefixes)
            self._schemas[full] = self._writer.register_schema(name=full, encoding=SCHEMA_ENCODING, data=text.encode())
        channel = self._writer.register_channel(topic=topic, message_encoding=MESSAGE_ENCODING,
                                                schema_id=self._schemas[full],
                                                metadata={"offered_qos_profiles": qos_yaml} if qos_yaml else {})
        self.channels[topic] = channel
        self._topic_of[channel] = topic
        self.counts[topic] = 0
        return channel

    def write(self, channel: int, data: bytes, log_time_ns: int, publish_time_ns: int, sequence: int = 0) -> None:
        self._writer.add_message(channel_id=channel, log_time=int(log_time_ns), data=bytes(data),
                                 publish_time=int(publish_time_ns), sequence=int(sequence) & 0xFFFFFFFF)
        self.counts[self._topic_of[channel]] += 1

    def add_metadata(self, name: str, data: dict[str, str]) -> None:
        self._writer.add_metadata(name, {str(k): str(v) for k, v in data.items()})

    def flush(self) -> None:
        if not self.closed:
            self._writer.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._writer.finish()
        finally:
            self._stream.close()


# ----------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class RecordedMessage:
    topic: str
    type_name: str        # pkg/msg/Type
    log_time_ns: int      # when the recorder received it
    publish_time_ns: int  # when the publisher sent it (DDS source timestamp; 0 if unknown)
    message: Any          # decoded: attributes named as the ROS fields

    @property
    def sent_ns(self) -> int:
        """Best estimate of when the message left its publisher."""
        return self.publish_time_ns or self.log_time_ns


@dataclass
class RecordingInfo:
    path: Path
    complete: bool                                     # summary present (closed cleanly)
    topics: dict[str, tuple[str, int]] = field(default_factory=dict)  # topic -> (type, messages)
    start_ns: int = 0
    end_ns: int = 0
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) * 1e-9


def _open(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"recording {path} not found")
    return path, open(path, "rb")


def _has_summary(stream) -> bool:
    try:
        return make_reader(stream).get_summary() is not None
    except (McapError, EOFError, ValueError, OSError):
        return False
    finally:
        stream.seek(0)


def recording_info(path: str | Path) -> RecordingInfo:
    """Topics, types, message counts and time span; reads every record when the file has no summary."""
    path, stream = _open(path)
    with stream:
        if _has_summary(stream):
            reader = make_reader(stream)
            summary = reader.get_summary()
            stats = summary.statistics
            schemas = summary.schemas
            counts = stats.channel_message_counts if stats else {}
            info = RecordingInfo(path=path, complete=True,
                                 start_ns=stats.message_start_time if stats else 0,
                                 end_ns=stats.message_end_time if stats else 0)
            for cid, ch in summary.channels.items():
                info.topics[ch.topic] = (schemas[ch.schema_id].name if ch.schema_id in schemas else "", counts.get(cid, 0))
            info.metadata = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
            return info
        info = RecordingInfo(path=path, complete=False)
        times = []
        for schema, channel, message in _iter_raw(stream, None, complete=False):
            name, n = info.topics.get(channel.topic, (schema.name if schema else "", 0))
            info.topics[channel.topic] = (name, n + 1)
            times.append(message.log_time)
        if times:
            info.start_ns, info.end_ns = min(times), max(times)
        return info


def _iter_raw(stream, topics, complete: bool):
    if complete:
        yield from make_reader(stream).iter_messages(topics=topics, log_time_order=True)
        return
    # No summary (the recorder was killed): read records in file order up to the truncation.
    reader = NonSeekingReader(stream)
    try:
        yield from reader.iter_messages(topics=topics, log_time_order=False)
    except (McapError, EOFError, ValueError):
        return


def read_messages(path: str | Path, topics: Iterable[str] | None = None,
                  decode: Callable[[str, bytes], Any] | None = None) -> Iterator[RecordedMessage]:
    """Decoded messages of ``topics`` (default: all), in log-time order (file order for a file
    without summary). Raises RecordingError for a missing file or an undecodable schema.

    ``decode(type_name, cdr_bytes)``: a decoder of the caller's (e.g. rclpy's C deserializer, tens
    of times faster on float arrays); default mcap_ros2's, pure Python, from the stored schemas."""
    path, stream = _open(path)
    topics = list(topics) if topics is not None else None
    decoders = DecoderFactory()
    with stream:
        complete = _has_summary(stream)
        for schema, channel, message in _iter_raw(stream, topics, complete):
            if channel.message_encoding != MESSAGE_ENCODING or schema is None or schema.encoding != SCHEMA_ENCODING:
                raise RecordingError(f"{path}: topic {channel.topic} is {channel.message_encoding!r} with schema "
                                     f"encoding {schema.encoding if schema else None!r}; only cdr/ros2msg is read")
            try:
                if decode is not None:
                    decoded = decode(schema.name, message.data)
                else:
                    decoded = decoders.decoder_for(channel.message_encoding, schema)(message.data)
            except Exception as exc:  # mcap_ros2 raises assorted types for a bad schema or payload
                raise RecordingError(f"{path}: cannot decode a {schema.name} message on {channel.topic}: {exc}") from exc
            yield RecordedMessage(topic=channel.topic, type_name=schema.name, log_time_ns=message.log_time,
                                  publish_time_ns=message.publish_time, message=decoded)
