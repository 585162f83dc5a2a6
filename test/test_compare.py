"""gmt-ros compare: policies on the same clips and seeds, one table with the acceptance checks."""
from __future__ import annotations

import numpy as np
import pytest

from gmt_ros import cli
from sim2sim import compare
from sim2sim.evaluate import EpisodeTrace


def _trace(q, ref, upright, mask):
    n = len(upright)
    zeros = np.zeros(n)
    return EpisodeTrace(time_s=np.arange(n) * 0.02, joint_pos=q, ref_joint_pos=ref, target_joint_pos=q,
                        joint_tau=np.zeros((n, 29)), root_height_m=zeros, ref_root_height_m=zeros, roll_rad=zeros,
                        pitch_rad=zeros, ref_roll_rad=zeros, ref_pitch_rad=zeros, e_mpjpe_rad=zeros,
                        e_mpkpe_mm=zeros, e_vel_mps=zeros, e_yaw_vel_radps=zeros,
                        upright=np.asarray(upright, bool), joint_mask=np.asarray(mask, bool), tau_limit=np.ones(29))


def test_trace_mpjpe_averages_scored_ticks_over_common_supplied_joints():
    q = np.zeros((3, 29))
    ref = np.zeros((3, 29))
    ref[0, 0], ref[1, 0], ref[2, 0] = 0.3, 0.6, 9.0  # the last tick fell: not scored
    ref[:, 19] = 5.0  # a wrist: outside the common joints
    ref[:, 1] = 1.0  # a joint the clip does not supply
    clip_mask = np.ones(29, bool)
    clip_mask[1] = False
    joints = np.ones(29, bool)
    joints[[19, 20, 21, 26, 27, 28]] = False  # the GMT student's 23
    got = compare.trace_mpjpe(_trace(q, ref, [True, True, False], clip_mask), joints)
    assert got == pytest.approx(np.mean([0.3 / 22, 0.6 / 22]))
    assert compare.trace_mpjpe(_trace(q, ref, [False, False, False], clip_mask), joints) is None


def test_common_joints_of_the_shipped_policies_are_the_gmt_23():
    mask = compare.common_joint_mask(["twist2_student", "gmt_student"])
    assert mask.sum() == 23 and not mask[[19, 20, 21, 26, 27, 28]].any()


def _rows(policy, falls, mpjpe, n=20):
    return [{"clip": f"c{i % 2}", "seed": i, "fell": i < falls, "duration_s": 5.0, "e_mpjpe_rad": mpjpe,
             "e_mpjpe_common_rad": mpjpe, "e_mpkpe_mm": 30.0, "e_vel_mps": 0.2, "e_yaw_vel_radps": 0.3}
            for i in range(n)]


@pytest.mark.parametrize("falls, mpjpe, fall_ok, mpjpe_ok", [
    (7, 0.098, True, True),    # 35 % vs 30 % (+5 points), 1.089 x
    (8, 0.098, False, True),   # +10 points
    (6, 0.111, True, False),   # 1.23 x
])
def test_verdicts_apply_the_acceptance_limits(falls, mpjpe, fall_ok, mpjpe_ok):
    summaries = {"teacher": compare.summarize_policy(_rows("teacher", 6, 0.09)),
                 "student": compare.summarize_policy(_rows("student", falls, mpjpe))}
    (line,) = compare.verdicts(summaries, "gmt", compare.Criteria())
    assert ("limit +5: met" in line) == fall_ok and ("limit +5: NOT met" in line) == (not fall_ok)
    assert ("limit 1.1: met" in line) == mpjpe_ok
    (line,) = compare.verdicts({"teacher": summaries["teacher"], "student": summaries["student"]}, "none",
                               compare.Criteria())
    assert f"{falls} of 20 runs fell" in line and "fails 'no fall'" in line


def test_the_table_goes_between_the_marks_and_nowhere_else(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text(f"intro\n{compare.BEGIN_MARK}\nold table\n{compare.END_MARK}\nrest\n")
    compare.write_between_marks(doc, "| new | table |\n")
    assert doc.read_text() == f"intro\n{compare.BEGIN_MARK}\n| new | table |\n{compare.END_MARK}\nrest\n"
    bare = tmp_path / "bare.md"
    bare.write_text("no marks")
    with pytest.raises(ValueError, match="no comparison section"):
        compare.write_between_marks(bare, "x")


def test_compare_runs_both_policies_on_the_same_runs_and_writes_one_table(tmp_path, capsys):
    doc = tmp_path / "card.md"
    doc.write_text(f"# card\n{compare.BEGIN_MARK}\n{compare.END_MARK}\n")
    code = cli.main(["compare", "--policies", "twist2_student", "gmt_student", "--dr", "none", "--motions",
                     "gmt/squat", "--jobs", "1", "--quiet", "--out", str(tmp_path / "cmp"), "--write-into", str(doc)])
    out = capsys.readouterr().out
    assert code == 0
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert table in doc.read_text() and table in out
    assert "| none (seed 0) | twist2_student | 1 |" in table and "| none (seed 0) | gmt_student | 1 |" in table
    assert "`gmt_student` without randomisation:" in table
    for policy in ("twist2_student", "gmt_student"):
        assert (tmp_path / "cmp" / "none" / policy / "runs.json").is_file()


@pytest.mark.parametrize("args, message", [
    (["--policies", "twist2_student"], "at least two different policies"),
    (["--policies", "twist2_student", "no_such_policy"], "no_such_policy"),
    (["--policies", "twist2_student", "gmt_student", "--dr", "nosuch"], "unknown randomization preset"),
    (["--policies", "twist2_student", "gmt_student", "--write-into", "/nonexistent.md"], "does not exist"),
])
def test_bad_input_is_refused_before_any_run(args, message, tmp_path, capsys):
    code = cli.main(["compare", *args, "--out", str(tmp_path / "o")])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
