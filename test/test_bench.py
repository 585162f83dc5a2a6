"""`gmt-ros bench`: the report's structure with tiny sample counts (no timing assertions: this
machine is shared), the latency definitions on hand-built records, the busy-loop load, bad input.

The graph section (every node as a process) is not run here: it takes a minute; its analysis
(``analyze_graph``) is checked on synthetic records whose latencies are worked out by hand below.
"""
import json
import os
import re

import numpy as np
import pytest

from gmt_ros import cli
from gmt_ros.tools import bench


def test_percentiles_are_numpy_percentiles_in_ms():
    samples = [0.001, 0.002, 0.003, 0.010, float("nan")]  # seconds; NaN dropped
    p = bench.percentiles_ms(samples)
    assert p["n"] == 4
    assert p["p50"] == pytest.approx(2.5)
    assert p["p99"] == pytest.approx(np.percentile([1, 2, 3, 10], 99), abs=1e-4)
    assert p["max"] == pytest.approx(10.0) and p["mean"] == pytest.approx(4.0)
    assert bench.percentiles_ms([])["p99"] is None


# --- analyze_graph on records with known timing ------------------------------------------------------
#
# Monotonic clock; the wall clock is the monotonic one + 1000 s.
#   sim publishes lowstate k at        P_k = 10 + 2 ms k
#   it enters the bridge's callback at P_k + 0.5 ms      -> sdk_state 0.5 ms
#   the bridge stamps /joint_states at P_k + 0.6 ms (wall), the policy has it at P_k + 0.8 ms
#   bridge writes end at               W_j = 10.0013 + 2 ms j   -> (a) = 0.8 ms for every state
#   policy tick i starts at            T_i = 10.005 + 20 ms i (+ 0.5 ms for odd i), lasts 0.6 ms
#     newest /joint_states by then: k = 2 + 10 i (received at 10.0048 + 20 ms i)
#       -> sample_wait 0.2 ms (even i) / 0.7 ms (odd i), transport_in 0.8 ms
#     target reaches the bridge at T_i + 0.9 ms; first write carrying it: W_(3 + 10 i)
#       -> end to end 3.3 ms, pipeline 2.3 / 1.8 ms, processing 3.1 / 2.6 ms
#   tick periods alternate 20.5 / 19.5 ms -> |period - 20 ms| = 0.5 ms
# Tick 0 has no known /joint_states; in tick 5 the supervisor is not in policy mode.

WALL = 1000.0
N_TICKS = 8


def synthetic_records():
    k = np.arange(10 * N_TICKS + 20)
    pub = 10.0 + 0.002 * k
    sim = {"pub_t": pub, "pub_tick": 1000 + 2 * k}  # the robot's ms tick
    arrival = pub + 0.0005
    bridge = {"state_t": arrival, "state_wall": pub + 0.0006 + WALL, "state_tick": sim["pub_tick"]}
    i = np.arange(N_TICKS)
    start = 10.005 + 0.02 * i + 0.0005 * (i % 2)
    target_stamp = np.round((start + WALL) * 1e9).astype(np.int64)
    js = 2 + 10 * i
    policy = {
        "tick_t": start, "tick_s": np.full(N_TICKS, 0.0006), "step_s": np.full(N_TICKS, 0.0004),
        "published": np.ones(N_TICKS), "target_stamp": target_stamp,
        "js_stamp": np.where(i == 0, 0, np.round((pub[js] + 0.0006 + WALL) * 1e9).astype(np.int64)),
        "js_t": pub[js] + 0.0008,
    }
    write_t = 10.0013 + 0.002 * np.arange(10 * N_TICKS + 20)
    received = start + 0.0009
    newest = np.searchsorted(received, write_t, side="right") - 1  # target in use at each write
    stamps = np.where(newest >= 0, target_stamp[np.maximum(newest, 0)], 0)
    in_policy = newest != 5
    bridge.update(write_t=write_t, write_stamp=stamps, write_policy=in_policy, write_ok=np.ones(write_t.size))
    return sim, bridge, policy


def test_latencies_of_hand_built_records():
    sim, bridge, policy = synthetic_records()
    span = (10.0, 10.0 + 0.02 * N_TICKS)
    out = bench.analyze_graph(sim, bridge, policy, span, dt=0.02)
    assert out["ticks"] == N_TICKS and out["ticks_published"] == N_TICKS
    assert out["policy_tick_ms"]["p99"] == pytest.approx(0.6)
    assert out["policy_step_ms"]["max"] == pytest.approx(0.4)
    dev = out["tick_period_deviation_ms"]
    assert dev["n"] == N_TICKS - 1 and dev["p50"] == pytest.approx(0.5) and dev["max"] == pytest.approx(0.5)
    a = out["bridge_state_to_write_ms"]
    assert a["p50"] == pytest.approx(0.8) and a["max"] == pytest.approx(0.8)
    # Ticks 1-4, 6, 7 match (0: no /joint_states stamp, 5: its target was never written in policy mode).
    assert out["e2e_unmatched_ticks"] == {"js_unknown": 1, "state_unknown": 0, "not_written": 1}
    b = out["e2e_state_to_write_ms"]
    assert b["n"] == 6 and b["p50"] == pytest.approx(3.3) and b["max"] == pytest.approx(3.3)
    parts = out["e2e_parts_ms"]
    assert parts["sdk_state"]["max"] == pytest.approx(0.5)
    assert parts["transport_in"]["max"] == pytest.approx(0.8)
    odd = np.array([1, 3, 7])  # matched odd ticks; matched even ones: 2, 4, 6
    expected_wait = np.where(np.isin([1, 2, 3, 4, 6, 7], odd), 0.7, 0.2)
    assert parts["sample_wait"]["p50"] == pytest.approx(np.percentile(expected_wait, 50))
    assert parts["pipeline"]["max"] == pytest.approx(2.3) and parts["processing"]["max"] == pytest.approx(3.1)
    assert parts["processing"]["p50"] == pytest.approx(np.percentile(3.3 - expected_wait, 50))


def test_analysis_keeps_to_its_phase():
    sim, bridge, policy = synthetic_records()
    out = bench.analyze_graph(sim, bridge, policy, (10.0, 10.0 + 0.02 * 3), dt=0.02)  # ticks 0, 1, 2
    assert out["ticks"] == 3
    assert out["e2e_state_to_write_ms"]["n"] == 2  # tick 0 has no /joint_states stamp
    assert out["bridge_state_to_write_ms"]["n"] == 30


# --- the busy loop --------------------------------------------------------------------------------------


def test_busy_load_runs_pinned_and_is_stopped():
    with bench.busy_load(pin=True) as busy:
        pid = busy["pid"]
        assert os.sched_getaffinity(pid) == {max(os.sched_getaffinity(0))}
        assert open(f"/proc/{pid}/stat").read().split()[2] in "RS"  # alive (running or runnable)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# --- the command ----------------------------------------------------------------------------------------


def test_bench_report_structure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = cli.main(["bench", "--sections", "policy,rtf", "--steps", "20", "--rtf-seconds", "0.2", "--no-load",
                     "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", report["git"]["commit"]) and isinstance(report["git"]["dirty"], bool)
    assert report["machine"]["nproc"] == os.cpu_count() and len(report["machine"]["load_average_start"]) == 3
    assert report["settings"]["sections"] == ["policy", "rtf"] and report["settings"]["load"] is False
    assert set(report["policy"]) == {"idle"} and "graph" not in report
    step = report["policy"]["idle"]
    for key in ("step_ms", "observation_ms", "onnx_ms", "command_ms", "checks_ms", "gmt_observation_ms"):
        p = step[key]
        assert p["n"] == 20 and 0 < p["p50"] <= p["p99"] <= p["max"], key
    # The parts are timed inside the same steps: together they cannot exceed the whole.
    assert step["observation_ms"]["p50"] + step["onnx_ms"]["p50"] < step["step_ms"]["max"] + 1e-9
    rtf = report["rtf"]["idle"]
    assert rtf["dr"] == "hard" and rtf["motion"] == "walk_stand"
    assert rtf["sim_s"] == pytest.approx(0.2) and rtf["real_time_factor"] == pytest.approx(0.2 / rtf["wall_s"], rel=0.01)
    names = [t["name"] for t in report["targets"]]
    assert "policy step p99 (idle, in-process)" in names and "sim2sim real-time factor, DR hard (idle)" in names
    assert all(t["met"] in (True, False) for t in report["targets"])
    printed = capsys.readouterr().out
    assert "[policy/idle] step" in printed and report["git"]["commit"] in printed


def test_unknown_section_is_refused(capsys):
    assert cli.main(["bench", "--sections", "policy,gpu"]) == 2
    assert "--sections: unknown ['gpu']; choose from policy, graph, rtf" in capsys.readouterr().err


def test_non_positive_durations_are_refused(capsys):
    assert cli.main(["bench", "--graph-seconds", "0"]) == 2
    assert "--graph-seconds must be positive, got 0.0" in capsys.readouterr().err


def test_probe_usage_names_the_nodes(capsys):
    assert bench.probe_main(["probe", "player", "x.npz"]) == 2
    assert "probe {sim,bridge,policy} RECORD_FILE" in capsys.readouterr().err
