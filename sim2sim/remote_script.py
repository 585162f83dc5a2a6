"""The robot's remote controller, scripted: timed button presses sampled into every lowstate's
``wireless_remote`` (the 40 bytes the G1 reports), for the simulated robot (``sim2sim.sdk_robot``).

Script (``parse_remote_script``): comma-separated presses ``T:BUTTONS[@DUR]``: T = sim seconds since
start, BUTTONS = button names of ``gmt_ros.core.remote`` joined by '+' (held together), DUR = seconds
held (default 0.3). Example ``"2.0:A,5.0:L1+B@1.0"``; YAML may give a list of such strings or of
mappings ``{at, buttons, duration_s}``. At run time ``ScriptedRemote.press`` and ``set_remote``
(sticks, held buttons) do the same.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from gmt_ros.core import remote

DEFAULT_PRESS_S = 0.3  # a quick human button press; long enough for a 50 Hz reader to see


@dataclass(frozen=True)
class RemotePress:
    """Buttons held together from ``at_s`` (sim seconds) for ``duration_s``."""

    at_s: float
    buttons: tuple[str, ...]
    duration_s: float = DEFAULT_PRESS_S

    def __post_init__(self):
        if not (math.isfinite(self.at_s) and self.at_s >= 0.0):
            raise ValueError(f"remote press time must be >= 0 s, got {self.at_s}")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0.0):
            raise ValueError(f"remote press duration must be > 0 s, got {self.duration_s}")
        if not self.buttons:
            raise ValueError(f"remote press at {self.at_s} s names no button")
        remote.buttons_to_bits(self.buttons)  # ValueError naming unknown buttons

    def spec(self) -> str:
        return f"{self.at_s:g}:{'+'.join(self.buttons)}@{self.duration_s:g}"


def _parse_press_text(text: str) -> RemotePress:
    item = text.strip()
    when, sep, rest = item.partition(":")
    if not sep or not rest:
        raise ValueError(f"remote script entry {item!r} is not TIME:BUTTONS[@SECONDS] (e.g. '2.0:L1+B@0.5')")
    names, at_sep, duration = rest.partition("@")
    try:
        at_s = float(when)
        duration_s = float(duration) if at_sep else DEFAULT_PRESS_S
    except ValueError:
        raise ValueError(f"remote script entry {item!r}: time and duration must be numbers") from None
    buttons = tuple(b.strip() for b in names.split("+"))
    if any(not b for b in buttons):
        raise ValueError(f"remote script entry {item!r} has an empty button name")
    try:
        return RemotePress(at_s, buttons, duration_s)
    except ValueError as exc:
        raise ValueError(f"remote script entry {item!r}: {exc}") from None


def _parse_press_mapping(entry: dict) -> RemotePress:
    unknown = set(entry) - {"at", "buttons", "duration_s"}
    if unknown or "at" not in entry or "buttons" not in entry:
        raise ValueError(f"remote script entry {entry!r} must have keys 'at', 'buttons' and optionally "
                         f"'duration_s'" + (f"; unknown: {sorted(unknown)}" if unknown else ""))
    buttons = entry["buttons"]
    buttons = tuple(buttons.split("+")) if isinstance(buttons, str) else tuple(buttons)
    try:
        return RemotePress(float(entry["at"]), tuple(str(b).strip() for b in buttons),
                           float(entry.get("duration_s", DEFAULT_PRESS_S)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"remote script entry {entry!r}: {exc}") from None


def parse_remote_script(script) -> tuple[RemotePress, ...]:
    """Presses from ``"T:BUTTONS[@DUR],..."`` or a list of such strings or of mappings
    ``{at, buttons, duration_s}`` (YAML). None or "" is no press. Sorted by time."""
    if script is None:
        return ()
    if isinstance(script, str):
        items = [s for s in script.split(",") if s.strip()]
    elif isinstance(script, (list, tuple)):
        items = list(script)
    else:
        raise TypeError(f"remote script must be a string or a list, got {type(script).__name__}")
    presses = []
    for item in items:
        if isinstance(item, RemotePress):
            presses.append(item)
        elif isinstance(item, str):
            presses.append(_parse_press_text(item))
        elif isinstance(item, dict):
            presses.append(_parse_press_mapping(item))
        else:
            raise TypeError(f"remote script entry {item!r} must be a string or a mapping")
    return tuple(sorted(presses, key=lambda p: p.at_s))


def _us(seconds: float) -> int:
    return int(round(seconds * 1e6))


class ScriptedRemote:
    """The 40 ``wireless_remote`` bytes the robot reports: base bytes (``set_remote``: sticks and
    held buttons) with the button bits of every active timed press OR-ed into bytes 2-3.
    Thread-safe; times are the caller's clock (the server uses sim seconds), compared in whole
    microseconds so that a press "1.0:A@0.3" covers exactly [1.0, 1.3)."""

    def __init__(self, presses=()):
        self._lock = threading.Lock()
        self._base = bytes(remote.REMOTE_BYTES)
        self._presses: list[tuple[int, int, int]] = []  # (start µs, end µs, button bits)
        for p in presses:
            self._add(p.at_s, p.duration_s, p.buttons)

    def _add(self, start: float, duration: float, buttons) -> None:
        bits = remote.buttons_to_bits(buttons)
        with self._lock:
            self._presses.append((_us(start), _us(start + duration), bits))

    def set_remote(self, raw) -> None:
        data = bytes(raw)
        if len(data) != remote.REMOTE_BYTES:
            raise ValueError(f"wireless_remote must be {remote.REMOTE_BYTES} bytes, got {len(data)}")
        with self._lock:
            self._base = data

    def press(self, buttons, duration_s: float, now: float) -> None:
        p = RemotePress(max(0.0, float(now)), tuple(buttons), float(duration_s))  # validates
        self._add(p.at_s, p.duration_s, p.buttons)

    def bytes_at(self, t: float) -> bytes:
        t = _us(t)
        with self._lock:
            bits = 0
            for start, end, b in self._presses:
                if start <= t < end:
                    bits |= b
            self._presses = [p for p in self._presses if p[1] > t]  # drop finished presses
            if not bits:
                return self._base
            out = bytearray(self._base)
        word = int.from_bytes(out[2:4], "little") | bits
        out[2:4] = word.to_bytes(2, "little")
        return bytes(out)
