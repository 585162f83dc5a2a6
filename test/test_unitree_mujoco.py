"""The stack against Unitree's own simulator (unitree_mujoco simulate_python, vendored beside the
project): its unitree_sdk2py_bridge.py imported unchanged, a headless main loop of ours, its
elastic band holding the robot until the supervisor is in policy (gmt_ros.tools.unitree_mujoco_check).
The simulator and the nodes run at nice -15, as a deployment beside other work would (and as the
graph tests do with --realtime): on a loaded 2-core machine they could otherwise starve into the
100 ms watchdogs, which says nothing about the profile under test."""

import pytest
from conftest import require_vendor

from gmt_ros.tools.unitree_mujoco_check import ARCHIVE_NAME, run_check

NICE = -15

pytest.importorskip("pygame", reason="Unitree's bridge imports pygame (requirements.txt pins it)")


@pytest.fixture(scope="module")
def archive():
    return require_vendor("unitree_mujoco") / ARCHIVE_NAME


def test_with_the_profile_the_policy_tracks_a_clip_upright(archive, tmp_path):
    r = run_check(tmp_path, simulate_dt=0.005, clip="gmt/walk_stand", profile="unitree_mujoco", archive=archive,
                  nice=NICE)
    op, sim = r["operator"], r["simulator"]
    assert r["operator_exit"] == 0, "\n".join(r["operator_output"][-30:] + ["-- bridge:"] + r["bridge_log_tail"])
    assert op["engaged"] and op["gantry_released"] and op["played_to_end"] and op["final_fault"] is None, op
    assert op["final_mode"] == "policy"
    bridge = op["bridge"]
    # the simulator's stream (200 Hz at simulate_dt 0.005: never more) reached the bridge and was
    # republished; how close to 200 Hz a loaded machine keeps is not this test's to say
    assert 0.0 < float(bridge["lowstate_rate_hz"]) <= 250.0 and float(bridge["joint_states_rate_hz"]) > 0.0, bridge
    assert sim["band"]["released"] and sim["simulate_dt"] == 0.005
    after = sim["after_release"]
    assert after["seconds"] > 7.0 and not after["fell"] and after["min_pelvis_height_m"] > 0.5, after
    assert "rt/lowstate arrives at" in "\n".join(r["bridge_log_tail"]) or bridge.get("lowstate_rate_hz")


def test_without_the_profile_the_refusal_names_the_cause_and_the_profile(archive, tmp_path):
    r = run_check(tmp_path, simulate_dt=0.005, clip=None, profile="g1", archive=archive, link_timeout_s=8.0,
                  nice=NICE)
    assert r["operator_exit"] == 1, r
    said = "\n".join(r["operator_output"])
    assert "all with CRC 0" in said and "Unitree's Python simulator does not set it" in said, said
    assert "config/bridge_unitree_mujoco.yaml" in said, said
    assert not r["simulator"]["band"]["released"]  # never engaged: the band still holds the robot
