"""`gmt-ros evaluate`: clips × seeds in worker processes, runs.json/.csv, the summary and its
confidence intervals, and bad input. Real policy, real MuJoCo, real DR presets."""
import csv
import io
import json
import math
import os
import shutil

import numpy as np
import pytest

from gmt_ros import cli
from gmt_ros.core.clip_library import list_clips
from sim2sim import batch, metrics
from sim2sim.randomization import DomainRandomization

# Two-sided 95 % Student-t critical values from a printed t table (independent of the code).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 9: 2.262, 29: 2.045}
Z95 = 1.959964


def gmt_ros(argv, capsys):
    """`gmt-ros ARGV` in this process, with the evaluate tool registered; (exit code, stdout, stderr)."""
    modules = cli.TOOL_MODULES
    if "evaluate" not in modules:
        cli.TOOL_MODULES = modules + ("evaluate",)
    try:
        code = cli.main(argv)
    finally:
        cli.TOOL_MODULES = modules
    out = capsys.readouterr()
    return code, out.out, out.err


# -- the statistics, hand-checked ---------------------------------------------------------------

@pytest.mark.parametrize("df, expected", sorted(T95.items()))
def test_t_critical_values_match_the_printed_table(df, expected):
    assert metrics.t_critical(0.95, df) == pytest.approx(expected, abs=6e-4)


def test_t_critical_at_other_confidences():
    # Table values: 90 % two-sided, df 5 -> 2.015; 99 %, df 10 -> 3.169.
    assert metrics.t_critical(0.90, 5) == pytest.approx(2.015, abs=6e-4)
    assert metrics.t_critical(0.99, 10) == pytest.approx(3.169, abs=6e-4)
    with pytest.raises(ValueError, match="degrees of freedom"):
        metrics.t_critical(0.95, 0)
    with pytest.raises(ValueError, match="confidence"):
        metrics.t_critical(1.5, 3)


def test_mean_confidence_interval_hand_checked():
    # 10, 12, 14, 16, 18: mean 14, s = sqrt(10), se = sqrt(10)/sqrt(5) = sqrt(2), t(4) = 2.776.
    iv = metrics.mean_confidence_interval([10, 12, 14, 16, 18])
    half = 2.776445 * math.sqrt(2.0)
    assert iv.value == pytest.approx(14.0)
    assert iv.low == pytest.approx(14.0 - half, abs=1e-5) and iv.high == pytest.approx(14.0 + half, abs=1e-5)
    assert iv.n == 5
    # NaN / None (runs without an upright tick) are left out.
    assert metrics.mean_confidence_interval([10, None, 12, float("nan"), 14, 16, 18]) == iv
    # 0.1, 0.2: mean 0.15, se 0.05, t(1) 12.706 -> [-0.485, 0.785], cut at 0 for an error.
    cut = metrics.mean_confidence_interval([0.1, 0.2], lower_bound=0.0)
    assert cut.low == 0.0 and cut.high == pytest.approx(0.15 + 12.706 * 0.05, abs=1e-3)
    one = metrics.mean_confidence_interval([3.0])
    assert one.value == 3.0 and math.isnan(one.low) and math.isnan(one.high) and one.n == 1
    assert metrics.mean_confidence_interval([]).n == 0


def test_wilson_interval_hand_checked():
    # 0 of 10: [0, z^2 / (n + z^2)] = [0, 0.27753]; 1 of 10: [0.0179, 0.4042] (published values);
    # 5 of 10: symmetric [0.2366, 0.7634]; 10 of 10: [0.72247, 1].
    iv = metrics.wilson_interval(0, 10)
    assert (iv.value, iv.low) == (0.0, 0.0) and iv.high == pytest.approx(Z95 ** 2 / (10 + Z95 ** 2), abs=1e-6)
    iv = metrics.wilson_interval(1, 10)
    assert iv.value == 0.1 and iv.low == pytest.approx(0.0179, abs=1e-4) and iv.high == pytest.approx(0.4042, abs=1e-4)
    iv = metrics.wilson_interval(5, 10)
    assert iv.low == pytest.approx(0.2366, abs=1e-4) and iv.high == pytest.approx(0.7634, abs=1e-4)
    iv = metrics.wilson_interval(10, 10)
    assert iv.high == 1.0 and iv.low == pytest.approx(10 / (10 + Z95 ** 2), abs=1e-6)
    with pytest.raises(ValueError, match="number of trials"):
        metrics.wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes"):
        metrics.wilson_interval(11, 10)


# -- finding clips ------------------------------------------------------------------------------

def test_find_clips_by_group_name_directory_and_default():
    library = list_clips()
    assert batch.find_clips([]) == library
    gmt = batch.find_clips(["gmt"])
    assert sorted(gmt) == sorted(n for n in library if n.startswith("gmt/")) and len(gmt) == 6
    both = batch.find_clips(["walk_stand", "twist2/walk_003"])
    assert sorted(both) == ["gmt/walk_stand", "twist2/walk_003"]
    # A library directory keeps library names.
    assert batch.find_clips([str(library["gmt/squat"].parent)]) == gmt


def test_find_clips_outside_the_library_and_name_clashes(tmp_path):
    library = list_clips()
    (tmp_path / "mine").mkdir()
    shutil.copy(library["gmt/squat"], tmp_path / "mine" / "sq.npz")
    shutil.copy(library["twist2/walk_001"], tmp_path / "w1.npz")
    found = batch.find_clips([str(tmp_path)])
    assert sorted(found) == ["mine/sq", "w1"]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(library["gmt/squat"], other / "w1.npz")
    with pytest.raises(ValueError, match="both be reported as 'w1'"):
        batch.find_clips([str(tmp_path / "w1.npz"), str(other / "w1.npz")])


# -- the batch, end to end ----------------------------------------------------------------------

CLIPS = ("gmt/squat", "twist2/walk_003")
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate")
    capture = io.StringIO()
    import contextlib

    modules = cli.TOOL_MODULES
    cli.TOOL_MODULES = modules + ("evaluate",) if "evaluate" not in modules else modules
    try:
        with contextlib.redirect_stdout(capture), contextlib.redirect_stderr(io.StringIO()):
            code = cli.main(["evaluate", "--motions", *CLIPS, "--seeds", "2", "--dr", "gmt", "--seconds", "1",
                             "--jobs", "2", "--quiet", "--out", str(out)])
    finally:
        cli.TOOL_MODULES = modules
    assert code == 0
    return out, capture.getvalue()


def test_batch_writes_every_file_with_one_row_per_clip_and_seed(batch_run):
    out, stdout = batch_run
    for name in ("runs.json", "runs.csv", "summary.json", "summary.md"):
        assert (out / name).is_file(), name
    rows = json.loads((out / "runs.json").read_text())
    assert sorted((r["clip"], r["seed"]) for r in rows) == sorted((c, s) for c in CLIPS for s in SEEDS)
    for r in rows:
        assert r["dr_preset"] == "gmt" and r["policy"] == "twist2_student"
        assert r["requested_s"] == 1.0
        if r["fell"]:
            assert r["fall_time_s"] < 1.0
        else:
            assert r["duration_s"] == pytest.approx(1.0) and r["policy_ticks"] == 50
        assert 0 < r["e_mpjpe_rad"] < 0.3 and 0 < r["e_mpkpe_mm"] < 150
        # The reported draw is exactly what the preset draws for that seed (recomputed here).
        assert r["randomization"] == json.loads(json.dumps(DomainRandomization.from_preset("gmt", r["seed"]).as_dict()))
        assert r["worker_pid"] != os.getpid()  # ran in a worker process
    assert len({r["worker_pid"] for r in rows}) <= 2
    frictions = {r["seed"]: r["randomization"]["friction"] for r in rows}
    assert frictions[0] != frictions[1]  # the seed draws the randomisation

    with open(out / "runs.csv", newline="") as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == 4
    by_key = {(r["clip"], int(r["seed"])): r for r in rows}
    for rec in records:
        row = by_key[(rec["clip"], int(rec["seed"]))]
        assert rec["fell"] == str(row["fell"])
        assert float(rec["e_mpkpe_mm"]) == row["e_mpkpe_mm"]
        assert float(rec["dr_friction"]) == row["randomization"]["friction"]
        assert json.loads(rec["dr_json"]) == row["randomization"]
    assert "| **all** | 4 |" in stdout


def _wilson(k, n, z=Z95):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _check_group(summary_part, rows):
    n = len(rows)
    falls = sum(r["fell"] for r in rows)
    assert summary_part["runs"] == n and summary_part["falls"] == falls
    fr = summary_part["fall_rate"]
    lo, hi = _wilson(falls, n)
    assert fr["value"] == pytest.approx(falls / n) and fr["low"] == pytest.approx(lo, abs=1e-7)
    assert fr["high"] == pytest.approx(hi, abs=1e-7)
    for key in batch.ERROR_KEYS:
        x = np.array([r[key] for r in rows if r[key] is not None])
        mean = x.mean()
        half = T95[len(x) - 1] * x.std(ddof=1) / math.sqrt(len(x))
        iv = summary_part[key]
        assert iv["n"] == len(x)
        assert iv["value"] == pytest.approx(mean, rel=1e-12)
        assert iv["high"] - mean == pytest.approx(half, rel=2e-4)  # table t to 3 decimals
        if mean - half > 0:
            assert mean - iv["low"] == pytest.approx(half, rel=2e-4)
        else:
            assert iv["low"] == 0.0  # an error's interval is cut at 0


def test_summary_equals_a_recomputation_from_runs_json(batch_run):
    out, _ = batch_run
    rows = json.loads((out / "runs.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["confidence"] == 0.95
    assert summary["meta"]["dr"] == "gmt" and summary["meta"]["seeds"] == list(SEEDS)
    assert set(summary["clips"]) == set(CLIPS)
    for clip in CLIPS:
        _check_group(summary["clips"][clip], [r for r in rows if r["clip"] == clip])
    _check_group(summary["overall"], rows)
    for seed in SEEDS:
        _check_group(summary["seeds"][str(seed)], [r for r in rows if r["seed"] == seed])
    # Clustered by seed: each seed (one draw shared by both clips) is one sample, t(1) over 2 seeds.
    clustered = summary["overall"]["clustered_by_seed"]
    assert clustered["seeds"] == 2
    per_seed = {key: [np.mean([r[key] for r in rows if r["seed"] == s]) for s in SEEDS]
                for key in ("fell", *batch.ERROR_KEYS)}
    for key, part in [("fell", clustered["fall_rate"])] + [(k, clustered[k]) for k in batch.ERROR_KEYS]:
        x = np.array(per_seed[key], dtype=float)
        half = T95[1] * x.std(ddof=1) / math.sqrt(2)
        assert part["n"] == 2 and part["value"] == pytest.approx(x.mean(), rel=1e-12)
        assert part["low"] == pytest.approx(max(0.0, x.mean() - half), rel=2e-4, abs=1e-12)
        upper = min(1.0, x.mean() + half) if key == "fell" else x.mean() + half
        assert part["high"] == pytest.approx(upper, rel=2e-4)
    md = (out / "summary.md").read_text()
    assert "| **all, clustered by seed** | 2 draws |" in md and "Per seed" in md
    for clip in CLIPS:
        assert f"| {clip} | 2 |" in md
    assert "Wilson" in md and "Student-t" in md and "upright" in md


def test_summary_counts_falls_and_leaves_runs_without_errors_out():
    rows = [
        {"clip": "a", "seed": 0, "fell": True, "duration_s": 0.0, "e_mpkpe_mm": None, "e_mpjpe_rad": None,
         "e_vel_mps": None, "e_yaw_vel_radps": None},
        {"clip": "a", "seed": 1, "fell": True, "duration_s": 1.2, "e_mpkpe_mm": 40.0, "e_mpjpe_rad": 0.2,
         "e_vel_mps": 0.5, "e_yaw_vel_radps": 0.4},
        {"clip": "a", "seed": 2, "fell": False, "duration_s": 5.0, "e_mpkpe_mm": 20.0, "e_mpjpe_rad": 0.1,
         "e_vel_mps": 0.3, "e_yaw_vel_radps": 0.2},
    ]
    s = batch.summarize(rows)["clips"]["a"]
    assert s["runs"] == 3 and s["falls"] == 2 and s["fall_rate"]["value"] == pytest.approx(2 / 3)
    assert s["e_mpkpe_mm"]["n"] == 2 and s["e_mpkpe_mm"]["value"] == pytest.approx(30.0)
    assert s["upright_s"] == pytest.approx(6.2)
    # Clustered by seed: three seeds with fall fractions 1, 1, 0; seed 0 has no errors.
    c = batch.summarize(rows)["overall"]["clustered_by_seed"]
    assert c["seeds"] == 3 and c["fall_rate"]["value"] == pytest.approx(2 / 3) and c["fall_rate"]["n"] == 3
    assert c["fall_rate"]["high"] == 1.0  # cut to the possible range
    assert c["e_mpkpe_mm"]["n"] == 2 and c["e_mpkpe_mm"]["value"] == pytest.approx(30.0)


# -- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--dr", "nosuch"], "unknown randomization preset 'nosuch'"),
    (["--seeds", "0"], "--seeds must be at least 1, got 0"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--motions", "no_such_clip"], "no motion clip named 'no_such_clip'"),
    (["--plot-joints", "left_elbow", "tail"], "unknown joint 'tail'"),
    (["--seconds", "-2"], "--seconds must be positive"),
    (["--policy", "no_such_policy"], "no_such_policy"),
])
def test_bad_input_is_a_usage_error_naming_the_problem(args, message, tmp_path, capsys):
    code, _, err = gmt_ros(["evaluate", "--motions", "gmt/squat", *args, "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o" / "runs.json").exists()


def test_an_empty_directory_has_no_clips(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = gmt_ros(["evaluate", "--motions", str(empty), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"no motion clips (.npz, .pkl) found in directory {empty}" in err
    code, _, err = gmt_ros(["evaluate", "--motions", str(tmp_path / "gone"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"motion path {tmp_path / 'gone'} does not exist" in err


def test_a_malformed_clip_is_refused_before_any_run(tmp_path, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(list_clips()["gmt/squat"], clips / "good.npz")
    (clips / "bad.pkl").write_bytes(b"this is not a pickle")
    code, _, err = gmt_ros(["evaluate", "--motions", str(clips), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "bad.pkl" in err and "Traceback" not in err


def test_run_batch_refuses_nothing_to_do_and_bad_jobs(tmp_path):
    settings = batch.BatchSettings(policy="twist2_student", out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="nothing to run"):
        batch.run_batch([], settings)
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        batch.run_batch([batch.RunSpec("a", "a.npz", 0, "none")], settings, jobs=0)
    with pytest.raises(ValueError, match="plots must be"):
        batch.plan_runs({"a": "a.npz"}, [0], "none", plots="some")
