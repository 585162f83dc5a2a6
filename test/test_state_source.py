"""gmt_ros.core.state_source: one publisher of rt/lowstate, its tick never going back; and the
supervisor latching what it finds. The bridge's use of it, with two real DDS writers, is in
test_bridge_node (test_second_lowstate_publisher_...)."""
import math

import pytest
from test_supervisor import robot, started

from gmt_ros.core.state_source import OVERLAP_S, StateSourceCheck, ticks_back_ms
from gmt_ros.core.supervisor import Mode, Request

A, B = 0x1A01, 0x2B02  # two publication handles


def test_ticks_back_on_the_wrapping_uint32_clock():
    assert ticks_back_ms(1000, 1002) == 0
    assert ticks_back_ms(1000, 1000) == 0
    assert ticks_back_ms(1000, 998) == 2
    assert ticks_back_ms(2**32 - 1, 1) == 0  # the 49.7-day wrap is a step forward
    assert ticks_back_ms(1, 2**32 - 1) == 2
    assert ticks_back_ms(0, 0) == 0  # Unitree's Python simulator: tick 0 throughout


def test_one_writer_with_a_forward_tick_passes_including_lost_samples_and_the_wrap():
    check = StateSourceCheck()
    t = 0.0
    for tick in (10, 12, 14, 40, 42):  # a gap is lost samples, forward
        t += 0.002
        assert check.observe(A, tick, t) is None
    wrapping = StateSourceCheck()
    for tick in (2**32 - 4, 2**32 - 2, 0, 2):
        t += 0.002
        assert wrapping.observe(A, tick, t) is None
    assert check.take_note() is None


def test_two_live_writers_are_a_fault_naming_both():
    check = StateSourceCheck()
    assert check.observe(A, 1000, 0.0) is None
    reason = check.observe(B, 1001, 0.01)  # in step with A: only the writer tells them apart
    assert reason == ("rt/lowstate from two publishers (writers 0x1a01 and 0x2b02 within 10 ms, ticks 1000 and 1001):"
                      " another robot or simulator on this interface and domain")
    assert check.observe(A, 1002, 0.012) is None  # A is still the robot the check follows
    assert check.observe(B, 1003, 0.014) is not None


def test_a_new_writer_after_the_old_went_quiet_is_a_restart_note_not_a_fault():
    check = StateSourceCheck()
    assert check.observe(A, 5000, 0.0) is None
    assert check.observe(B, 0, OVERLAP_S + 0.1) is None  # its own boot: tick 0 is not "back"
    note = check.take_note()
    assert note.startswith("rt/lowstate now from another publisher (writer 0x2b02, tick 0; the previous one silent for 0.6 s)")
    assert check.take_note() is None
    assert check.observe(B, 2, OVERLAP_S + 0.102) is None
    assert check.observe(A, 5002, OVERLAP_S + 0.104) is not None  # A was quiet, not gone: now both are live


def test_a_tick_going_back_is_a_fault_also_without_writer_identity():
    check = StateSourceCheck()
    assert check.observe(None, 1000, 0.0) is None
    assert check.observe(None, 50_000, 0.002) is None  # forward: could be losses
    assert check.observe(None, 1002, 0.004) == ("rt/lowstate tick went back 48998 ms (from 50000 to 1002): a second robot "
                                                "or simulator on this interface and domain, or the robot restarted")
    same_writer = StateSourceCheck()
    assert same_writer.observe(A, 3000, 0.0) is None
    assert "tick went back 3000 ms" in same_writer.observe(A, 0, 0.002)  # a simulator reset under one writer


def test_bad_overlap_is_refused():
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="overlap_s must be > 0"):
            StateSourceCheck(bad)


def test_supervisor_latches_a_second_publisher_in_any_mode_and_clear_needs_one_again():
    sup, t = started()
    assert sup.state_source(A, 100, t) is None
    assert sup.mode is Mode.HOLD
    assert sup.state_source(B, 101, t + 0.001) is None  # no note: a fault
    assert sup.mode is Mode.DAMPING and sup.fault.startswith("rt/lowstate from two publishers")
    d = sup.tick(t + 0.002, robot(), t + 0.002, None, None)
    assert d.mode is Mode.DAMPING and not d.command.kp.any()
    # After B went quiet, clear works; B back within the overlap of A faults again.
    assert sup.state_source(A, 102, t + 1.0) is None
    assert sup.request(Request.CLEAR, t + 1.0).accepted
    sup.state_source(B, 103, t + 1.1)
    assert sup.fault.startswith("rt/lowstate from two publishers")


def test_supervisor_with_the_check_off_ignores_sources():
    from gmt_ros.core.supervisor import SupervisorConfig

    sup, t = started(SupervisorConfig(ramp_time_s=1.0, single_state_source=False))
    assert sup.state_source(A, 100, t) is None and sup.state_source(B, 0, t) is None
    assert sup.mode is Mode.HOLD and sup.fault is None
