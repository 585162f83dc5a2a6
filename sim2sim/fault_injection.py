"""Faults the simulated robot can inject into its own side of the link (the fault-injection suite,
docs/FAULTS.md). The node's ``--fault SPEC`` (repeatable, or several specs joined by ';'):

    lowstate_stop@T[:D]        from sim time T, publish no rt/lowstate (for D seconds; default: for good)
    lowstate_delay@T:D[±J]     from T, every rt/lowstate leaves D ± J seconds late (uniform jitter, wall
                               clock, order kept as on one DDS reader); '+-' may stand for '±'
    state_bad_crc@T[:D]        from T (for D seconds), every rt/lowstate carries a wrong CRC
    push@T:V | push@T:VX,VY    at T, add V m/s along world x (or VX, VY) to the robot's velocity
    press@T:BUTTONS[:D]        at T, hold remote buttons ('L1+R1') for D seconds (default 1.0)
    dead_slots:S,S,...         from the start, motor slots S (numbers 0-28 or joint names) report
                               all zeros (no mode, temperature, voltage, position, speed, torque)

T is sim seconds since the robot started (the clock of ``--remote-script`` and the gantry). The
wrong mode_machine of a 23-DoF robot is the node's existing ``--mode-machine 4``.

Hooks, called by ``sim2sim.sdk_robot.SimRobotServer`` when it has an injector:

    after_chunk(server)                     loop thread, after each 2 ms chunk: push, press
    outgoing_state(msg, sim_time) -> msg    loop thread, before each rt/lowstate write: dead slots,
                                            stop (None: nothing is written), bad CRC, delay

``report()`` says when each fault fired, on the wall clock (time.time()), and the wall time of the
last rt/lowstate written before it: the reference the suite measures the bridge's reaction from.
No ROS, no DDS here; the server does the writing.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from gmt_ros.adapters import lowlevel
from gmt_ros.core import g1, remote

KINDS = ("lowstate_stop", "lowstate_delay", "state_bad_crc", "push", "press", "dead_slots")
DEFAULT_PRESS_S = 1.0
SYNTAX = ("lowstate_stop@T[:D], lowstate_delay@T:D[±J], state_bad_crc@T[:D], push@T:V or push@T:VX,VY, "
          "press@T:BUTTONS[:D], dead_slots:S,S,...")


@dataclass(frozen=True)
class FaultSpec:
    """One parsed fault. ``at_s`` is sim seconds (0 for dead_slots); ``duration_s`` None = for good."""

    kind: str
    text: str
    at_s: float = 0.0
    duration_s: float | None = None
    delay_s: float = 0.0
    jitter_s: float = 0.0
    push_mps: tuple[float, float] = (0.0, 0.0)
    buttons: tuple[str, ...] = ()
    slots: tuple[int, ...] = ()

    def active(self, sim_time: float) -> bool:
        if sim_time < self.at_s - 1e-9:
            return False
        return self.duration_s is None or sim_time < self.at_s + self.duration_s - 1e-9


def _number(text: str, what: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"fault {spec!r}: {what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"fault {spec!r}: {what} must be finite, got {text!r}")
    return value


def _positive(text: str, what: str, spec: str) -> float:
    value = _number(text, what, spec)
    if value <= 0:
        raise ValueError(f"fault {spec!r}: {what} must be > 0 s, got {text}")
    return value


def _slot(text: str, spec: str) -> int:
    name = text.strip()
    if name in g1.SLOT_OF:
        return g1.SLOT_OF[name]
    try:
        slot = int(name)
    except ValueError:
        raise ValueError(f"fault {spec!r}: {name!r} is neither a motor slot number nor a G1 joint name") from None
    if not 0 <= slot < g1.NUM_BODY_JOINTS:
        raise ValueError(f"fault {spec!r}: motor slot {slot} is outside the body's 0..{g1.NUM_BODY_JOINTS - 1}")
    return slot


def parse_fault(text: str) -> FaultSpec:
    """One spec (see the module docstring); ValueError naming the spec and what is wrong."""
    spec = text.strip()
    if not spec:
        raise ValueError("empty fault spec; expected one of: " + SYNTAX)
    if spec.startswith("dead_slots"):
        _, sep, rest = spec.partition(":")
        if not sep or not rest.strip():
            raise ValueError(f"fault {spec!r}: dead_slots needs slots, e.g. 'dead_slots:13,14'")
        slots = tuple(_slot(s, spec) for s in rest.split(","))
        if len(set(slots)) != len(slots):
            raise ValueError(f"fault {spec!r}: a slot is named twice")
        return FaultSpec("dead_slots", spec, slots=tuple(sorted(slots)))
    kind, at_sep, rest = spec.partition("@")
    kind = kind.strip()
    if kind not in KINDS:
        raise ValueError(f"fault {spec!r}: unknown kind {kind!r}; known: {', '.join(KINDS)} ({SYNTAX})")
    if not at_sep:
        raise ValueError(f"fault {spec!r}: {kind} needs a time, e.g. '{kind}@8.0' ({SYNTAX})")
    when, _, args = rest.partition(":")
    at_s = _number(when, "the time", spec)
    if at_s < 0:
        raise ValueError(f"fault {spec!r}: the time must be >= 0 s of sim time, got {when}")
    args = args.strip()
    if kind in ("lowstate_stop", "state_bad_crc"):
        duration = _positive(args, "the duration", spec) if args else None
        return FaultSpec(kind, spec, at_s, duration_s=duration)
    if kind == "lowstate_delay":
        if not args:
            raise ValueError(f"fault {spec!r}: lowstate_delay needs a delay, e.g. 'lowstate_delay@8.0:0.2±0.05'")
        mean, pm, jitter = args.replace("+-", "±").partition("±")
        delay = _positive(mean, "the delay", spec)
        jitter_s = _number(jitter, "the jitter", spec) if pm else 0.0
        if not 0 <= jitter_s <= delay:
            raise ValueError(f"fault {spec!r}: the jitter must be in [0, delay {delay:g}] s, got {jitter.strip()}")
        return FaultSpec(kind, spec, at_s, delay_s=delay, jitter_s=jitter_s)
    if kind == "push":
        parts = [p for p in args.split(",")] if args else []
        if len(parts) not in (1, 2):
            raise ValueError(f"fault {spec!r}: push needs a speed, 'push@T:V' or 'push@T:VX,VY' (m/s)")
        v = tuple(_number(p, "the push speed", spec) for p in parts)
        push = (v[0], 0.0) if len(v) == 1 else (v[0], v[1])
        if push == (0.0, 0.0):
            raise ValueError(f"fault {spec!r}: a push of 0 m/s does nothing")
        return FaultSpec(kind, spec, at_s, push_mps=push)
    # press
    names, _, duration = args.partition(":")
    buttons = tuple(b.strip() for b in names.split("+")) if names.strip() else ()
    if not buttons or any(not b for b in buttons):
        raise ValueError(f"fault {spec!r}: press needs buttons, e.g. 'press@9.0:L1+R1'")
    try:
        remote.buttons_to_bits(buttons)
    except ValueError as exc:
        raise ValueError(f"fault {spec!r}: {exc}") from None
    press_s = _positive(duration, "the press duration", spec) if duration.strip() else DEFAULT_PRESS_S
    return FaultSpec(kind, spec, at_s, duration_s=press_s, buttons=buttons)


def parse_faults(specs) -> tuple[FaultSpec, ...]:
    """Specs from a string (';'-separated), a list of such strings, or None. At most one state-link
    fault of each kind and one dead_slots entry (two would make the report ambiguous)."""
    if specs is None:
        return ()
    if isinstance(specs, str):
        specs = [specs]
    if not isinstance(specs, (list, tuple)):
        raise TypeError(f"faults must be a string or a list of strings, got {type(specs).__name__}")
    out = []
    for item in specs:
        if isinstance(item, FaultSpec):
            out.append(item)
            continue
        if not isinstance(item, str):
            raise TypeError(f"fault {item!r} must be a string")
        out += [parse_fault(s) for s in item.split(";") if s.strip()]
    for kind in ("lowstate_stop", "lowstate_delay", "state_bad_crc", "dead_slots"):
        if sum(f.kind == kind for f in out) > 1:
            raise ValueError(f"more than one {kind} fault: {[f.text for f in out if f.kind == kind]}")
    return tuple(sorted(out, key=lambda f: f.at_s))


@dataclass
class _Fired:
    """What happened to one timed fault (wall clock = time.time())."""

    sim_time: float | None = None
    unix_time: float | None = None
    last_state_before_unix: float | None = None  # last rt/lowstate written before the fault acted
    first_state_after_unix: float | None = None  # first rt/lowstate written while/after it acted
    ended_unix: float | None = None
    count: int = 0  # states withheld / corrupted / delayed by it


@dataclass
class FaultInjector:
    """Applies ``faults`` (``parse_faults``) to a running ``SimRobotServer``; see the module docstring."""

    faults: tuple[FaultSpec, ...]
    seed: int = 0
    _fired: dict = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self):
        self.faults = parse_faults(list(self.faults))
        self._fired = {f.text: _Fired() for f in self.faults}
        self._dead = tuple(s for f in self.faults if f.kind == "dead_slots" for s in f.slots)
        self._timed = [f for f in self.faults if f.kind in ("push", "press")]
        self._link = [f for f in self.faults if f.kind in ("lowstate_stop", "lowstate_delay", "state_bad_crc")]
        self._rng = random.Random(self.seed)
        self._queue: deque[tuple[float, bytes]] = deque()  # (due monotonic time, serialized state)
        self._last_due = -math.inf
        self._last_out_unix: float | None = None
        self._press_pending: list[FaultSpec] = []

    @property
    def dead_slots(self) -> tuple[int, ...]:
        return self._dead

    # -- loop thread ------------------------------------------------------------------------

    def after_chunk(self, server) -> None:
        """Fire pushes and presses that are due (sim time of ``server``)."""
        if not self._timed:
            return
        t = server.sim_time
        for f in list(self._timed):
            if t + 1e-9 < f.at_s:
                continue
            self._timed.remove(f)
            if f.kind == "push":
                with server._sim_lock:
                    server.sim._push(f.push_mps)  # G1Sim's velocity kick (the DR pushes use it too)
            else:
                server.press(f.buttons, f.duration_s)
                self._press_pending.append(f)
            self._mark(f, t)

    def outgoing_state(self, msg, sim_time: float):
        """The message to write now instead of ``msg`` (the server's reused LowState_), or None."""
        if self._dead:
            for s in self._dead:
                m = msg.motor_state[s]
                m.mode, m.q, m.dq, m.ddq, m.tau_est, m.vol, m.motorstate = 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0
                m.temperature = [0, 0]
            msg.crc = lowlevel.compute_crc(msg)
        for f in self._link:
            fired = self._fired[f.text]
            if not f.active(sim_time):
                if fired.unix_time is not None and fired.ended_unix is None:
                    fired.ended_unix = time.time()
                continue
            if fired.unix_time is None:
                self._mark(f, sim_time)
            fired.count += 1
            if f.kind == "lowstate_stop":
                return None
            if f.kind == "state_bad_crc":
                msg.crc = lowlevel.compute_crc(msg) ^ 0x5A5A5A5A
            elif f.kind == "lowstate_delay":
                msg = self._delayed(msg, f)
        if msg is not None:
            now = time.time()
            self._last_out_unix = now
            for f in self._link + self._press_pending:
                fired = self._fired[f.text]
                if fired.unix_time is not None and fired.first_state_after_unix is None:
                    fired.first_state_after_unix = now
            self._press_pending.clear()
        return msg

    def _delayed(self, msg, f: FaultSpec):
        now = time.monotonic()
        due = now + f.delay_s + (self._rng.uniform(-f.jitter_s, f.jitter_s) if f.jitter_s else 0.0)
        due = max(due, self._last_due)  # one DDS reader: no overtaking
        self._last_due = due
        self._queue.append((due, msg.serialize()))
        newest = None
        while self._queue and self._queue[0][0] <= now:
            newest = self._queue.popleft()[1]
        return None if newest is None else type(msg).deserialize(newest)

    def _mark(self, f: FaultSpec, sim_time: float) -> None:
        with self._lock:
            fired = self._fired[f.text]
            fired.sim_time = sim_time
            fired.unix_time = time.time()
            fired.last_state_before_unix = self._last_out_unix

    # -- report -----------------------------------------------------------------------------

    def report(self) -> dict:
        with self._lock:
            rows = []
            for f in self.faults:
                fired = self._fired[f.text]
                rows.append({
                    "spec": f.text, "kind": f.kind, "at_s": f.at_s,
                    "fired": fired.unix_time is not None or f.kind == "dead_slots",
                    "fired_sim_time_s": None if fired.sim_time is None else round(fired.sim_time, 4),
                    "fired_unix_time": fired.unix_time,
                    "last_state_before_unix_time": fired.last_state_before_unix,
                    "first_state_after_unix_time": fired.first_state_after_unix,
                    "ended_unix_time": fired.ended_unix,
                    "states_affected": fired.count,
                })
        return {"faults": rows, "dead_slots": [g1.JOINT_NAMES[s] for s in self._dead]}
