"""gmt_ros.core.remote against hand-built wireless_remote byte arrays."""
import pytest
from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowState_
from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowState_

from gmt_ros.core.remote import BUTTON_NAMES, RemoteState, decode_remote, encode_remote

# Float32 little-endian bit patterns written out by hand.
F32_0_5 = [0x00, 0x00, 0x00, 0x3F]
F32_MINUS_0_25 = [0x00, 0x00, 0x80, 0xBE]
F32_0_75 = [0x00, 0x00, 0x40, 0x3F]
F32_1 = [0x00, 0x00, 0x80, 0x3F]
F32_MINUS_1 = [0x00, 0x00, 0x80, 0xBF]


def hand_built() -> bytes:
    raw = [0] * 40
    raw[2] = 0b0010_0001  # bit 0 R1, bit 5 L2
    raw[3] = 0b1000_0001  # bit 8 A, bit 15 Left
    raw[4:8] = F32_0_5  # lx
    raw[8:12] = F32_MINUS_0_25  # rx
    raw[12:16] = F32_0_75  # ry
    raw[16:20] = F32_1  # L2 analog
    raw[20:24] = F32_MINUS_1  # ly
    raw[0], raw[1], raw[30] = 0xAA, 0x55, 0x77  # bytes outside the decoded fields
    return bytes(raw)


def test_decode_hand_built_bytes():
    r = decode_remote(hand_built())
    assert r.buttons == {"R1", "L2", "A", "Left"}
    assert (r.lx, r.rx, r.ry, r.l2_analog, r.ly) == (0.5, -0.25, 0.75, 1.0, -1.0)
    assert r.pressed("L2", "A") and not r.pressed("L2", "R2")
    assert r.button_bits == 0b1000_0001_0010_0001


def test_each_bit_is_its_button():
    expected = ["R1", "L1", "Start", "Select", "R2", "L2", "F1", "F2",
                "A", "B", "X", "Y", "Up", "Right", "Down", "Left"]
    assert list(BUTTON_NAMES) == expected
    for bit, name in enumerate(expected):
        raw = bytearray(40)
        raw[2 + bit // 8] = 1 << (bit % 8)
        assert decode_remote(raw).buttons == {name}, name


def test_encoder_writes_the_same_bytes():
    raw = bytearray(hand_built())
    raw[0] = raw[1] = raw[30] = 0  # the encoder leaves undecoded bytes zero
    assert encode_remote({"R1", "L2", "A", "Left"}, lx=0.5, rx=-0.25, ry=0.75, l2_analog=1.0, ly=-1.0) == bytes(raw)
    assert encode_remote() == bytes(40)


def test_round_trip_through_a_lowstate_message():
    msg = unitree_hg_msg_dds__LowState_()
    msg.wireless_remote = list(encode_remote(["Start", "Down"], ly=0.3))  # a list of ints, as the SDK allows
    received = LowState_.deserialize(msg.serialize())  # and bytes after the SDK's decoder
    for raw in (msg.wireless_remote, received.wireless_remote):
        r = decode_remote(raw)
        assert r.buttons == {"Start", "Down"}
        assert r.ly == pytest.approx(0.3, abs=1e-7) and r.lx == 0.0
    assert decode_remote(encode_remote()) == RemoteState(buttons=frozenset())


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="must be 40 bytes, got 39"):
        decode_remote(bytes(39))
    with pytest.raises(ValueError, match="must be 40 bytes"):
        decode_remote([256] * 40)
    with pytest.raises(ValueError, match=r"unknown remote button\(s\) \['Triangle'\]"):
        encode_remote(["A", "Triangle"])
    with pytest.raises(ValueError, match="unknown remote button"):
        decode_remote(bytes(40)).pressed("start")
