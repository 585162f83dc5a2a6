"""The G1 wireless remote as LowState_.wireless_remote carries it (40 bytes).

Layout (little-endian): bytes 2-3 a uint16 of button bits, then float32 sticks: lx at 4-7,
rx at 8-11, ry at 12-15, the L2 trigger's analog value at 16-19, ly at 20-23. The other bytes
are not decoded (the encoder leaves them zero).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

REMOTE_BYTES = 40

# Bit index of each button in the uint16 at bytes 2-3.
BUTTON_BITS: dict[str, int] = {
    "R1": 0, "L1": 1, "Start": 2, "Select": 3, "R2": 4, "L2": 5, "F1": 6, "F2": 7,
    "A": 8, "B": 9, "X": 10, "Y": 11, "Up": 12, "Right": 13, "Down": 14, "Left": 15,
}
BUTTON_NAMES: tuple[str, ...] = tuple(sorted(BUTTON_BITS, key=BUTTON_BITS.__getitem__))

_BUTTONS_AT = 2
_BUTTONS = struct.Struct("<H")
_STICKS_AT = 4
_STICKS = struct.Struct("<5f")  # lx, rx, ry, l2 analog, ly (wire order)


@dataclass(frozen=True)
class RemoteState:
    """Decoded remote: the set of pressed buttons and the stick/trigger values (as sent, ≈ -1..1)."""

    buttons: frozenset[str]
    lx: float = 0.0
    ly: float = 0.0
    rx: float = 0.0
    ry: float = 0.0
    l2_analog: float = 0.0

    def pressed(self, *names: str) -> bool:
        """True when every named button is held (a combination such as ``pressed("L2", "R2")``)."""
        _check_names(names)
        return all(n in self.buttons for n in names)

    @property
    def button_bits(self) -> int:
        return buttons_to_bits(self.buttons)


def _check_names(names) -> None:
    unknown = [n for n in names if n not in BUTTON_BITS]
    if unknown:
        raise ValueError(f"unknown remote button(s) {unknown}; known: {', '.join(BUTTON_NAMES)}")


def buttons_to_bits(buttons) -> int:
    _check_names(buttons)
    bits = 0
    for name in buttons:
        bits |= 1 << BUTTON_BITS[name]
    return bits


def _as_bytes(raw) -> bytes:
    try:
        data = bytes(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"wireless_remote must be {REMOTE_BYTES} bytes (values 0..255): {exc}") from None
    if len(data) != REMOTE_BYTES:
        raise ValueError(f"wireless_remote must be {REMOTE_BYTES} bytes, got {len(data)}")
    return data


def decode_remote(raw) -> RemoteState:
    """Decode 40 wireless_remote bytes (bytes, bytearray or a sequence of 0..255 ints)."""
    data = _as_bytes(raw)
    (bits,) = _BUTTONS.unpack_from(data, _BUTTONS_AT)
    lx, rx, ry, l2, ly = _STICKS.unpack_from(data, _STICKS_AT)
    pressed = frozenset(n for n, b in BUTTON_BITS.items() if bits >> b & 1)
    return RemoteState(buttons=pressed, lx=lx, ly=ly, rx=rx, ry=ry, l2_analog=l2)


def encode_remote(
    buttons=(), lx: float = 0.0, ly: float = 0.0, rx: float = 0.0, ry: float = 0.0, l2_analog: float = 0.0
) -> bytes:
    """40 wireless_remote bytes with these buttons held and stick values (used to script a
    simulated operator). Sticks are float32 on the wire, so values round to float32."""
    out = bytearray(REMOTE_BYTES)
    _BUTTONS.pack_into(out, _BUTTONS_AT, buttons_to_bits(buttons))
    _STICKS.pack_into(out, _STICKS_AT, lx, rx, ry, l2_analog, ly)
    return bytes(out)
