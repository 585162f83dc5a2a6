"""The DAgger distillation (gmt_ros/training): the mixture's bookkeeping with the real teacher,
a tiny distillation end to end (rollouts in MuJoCo, training, ONNX export), and the deploy
stack's independence from the training extra.

The tiny run takes seconds: one short clip, 2-second episodes, a 32-unit network, a few hundred
samples. It skips, saying why, where the training extra (requirements-train.txt) is missing.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gmt_ros.core import g1
from gmt_ros.core.clip_library import load_named_clip
from gmt_ros.core.contract import load_contract
from gmt_ros.core.motion import window_from_clip
from gmt_ros.core.policy import TrackingPolicy
from gmt_ros.tools.distill import missing_training_extra
from gmt_ros.training.mixture import DaggerMixture
from sim2sim.evaluate import make_sim

REPO = Path(__file__).resolve().parents[1]
MISSING = missing_training_extra()
needs_training_extra = pytest.mark.skipif(
    bool(MISSING), reason=f"training extra not installed (missing {', '.join(MISSING)}): "
                          "bash scripts/setup.sh installs requirements-train.txt")


def _affine_student(tmp_path: Path) -> Path:
    """A GMT-contract graph (2154 -> 23) whose action is a fixed linear map of the observation."""
    from test_policy import affine_onnx

    w = np.random.default_rng(3).normal(0.0, 1e-3, size=(2154, 23))
    return affine_onnx(tmp_path / "student.onnx", w, np.full(23, 0.05))


SQUAT = load_named_clip("gmt/squat")


def _mixture(tmp_path, teacher_share, **kw):
    return DaggerMixture(TrackingPolicy("twist2_student"), TrackingPolicy("gmt_student", onnx_path=_affine_student(tmp_path)),
                         teacher_share=teacher_share, rng=np.random.default_rng(0), clip=SQUAT, **kw)


def _ticks(mixture, n=5):
    """n policy ticks on the squat clip, windows prepared by the student's contract (as run_episode does)."""
    sim = make_sim(0)
    f0 = SQUAT.sample(0.0)
    sim.reset(root_pos=f0.root_pos[0], root_quat=f0.root_quat[0], joint_pos=f0.joint_pos[0])
    mixture.reset(sim.state())
    out = []
    for k in range(n):
        t = 0.02 * k
        window = window_from_clip(SQUAT, t, t, conventions=mixture.student.contract.reference)
        command = mixture.step(sim.state(), window, t)
        sim.set_command(command)
        sim.step(20)
        out.append(command)
    return out


def test_teacher_labels_by_joint_name_and_the_student_sees_the_executed_action(tmp_path):
    mixture = _mixture(tmp_path, teacher_share=1.0)
    teacher, student = mixture.teacher, mixture.student
    commands = _ticks(mixture)
    rec = mixture.recording
    assert len(rec.labels) == 5 and not any(rec.student_acted)
    # The label is the teacher's action on the student's joints, found by name (the teacher's
    # order has the wrists in the middle of each arm; equal defaults and scales make it 1:1).
    names = list(load_contract("twist2_student").joint_names)
    by_name = [names.index(n) for n in load_contract("gmt_student").joint_names]
    np.testing.assert_allclose(student.last_action, rec.labels[-1], atol=1e-6)
    # The teacher sees what was sent: its own action on its 23 shared joints, 0 for the held wrists.
    np.testing.assert_allclose(teacher.last_action[by_name], rec.labels[-1], atol=1e-6)
    wrists = [names.index(n) for n in names if "wrist" in n]
    np.testing.assert_array_equal(teacher.last_action[wrists], 0.0)
    # The robot gets the student's contract's command: the teacher's targets, wrists held at 0.
    gmt = load_contract("gmt_student")
    np.testing.assert_allclose(commands[-1].q[gmt.slots], gmt.default_pose + 0.5 * np.clip(rec.labels[-1], -10, 10),
                               atol=1e-6)
    np.testing.assert_array_equal(commands[-1].q[gmt.held_slots], 0.0)
    np.testing.assert_array_equal(commands[-1].kp[gmt.held_slots], 20.0)
    # The student's recorded observation is what its own builder made (last action included).
    np.testing.assert_allclose(rec.observations[-1][651:674], rec.labels[-2], atol=1e-6)


def test_when_the_student_acts_it_sees_its_own_output(tmp_path):
    mixture = _mixture(tmp_path, teacher_share=0.0)
    student = mixture.student
    _ticks(mixture, n=3)
    rec = mixture.recording
    assert all(rec.student_acted)
    own = student.network(student.last_observation)
    np.testing.assert_allclose(student.last_action, own, atol=1e-6)
    assert not np.allclose(student.last_action, rec.labels[-1], atol=1e-3)  # it did not copy the label
    assert np.isfinite(rec.student_error).all()


def test_teacher_noise_perturbs_what_is_sent_not_the_label(tmp_path):
    clean = _mixture(tmp_path, teacher_share=1.0)
    noisy = _mixture(tmp_path, teacher_share=1.0, teacher_noise=0.3)
    _ticks(clean, n=1)
    _ticks(noisy, n=1)
    np.testing.assert_allclose(noisy.recording.labels[0], clean.recording.labels[0], atol=1e-6)
    sent = noisy.student.last_action
    assert 0.05 < np.std(sent - noisy.recording.labels[0]) < 0.6


def test_each_policy_sees_the_reference_prepared_by_its_own_contract(tmp_path):
    """The teacher (TWIST2: central differences, no smoothing, hold past the end) and the student
    (GMT: forward differences, zero-padded box filter, loop) get the same clip stretch, each prepared
    its own way; the observations equal what each deployed policy builds from such a window."""
    mixture = _mixture(tmp_path, teacher_share=1.0)
    sim = make_sim(0)
    sim.reset()
    state = sim.state()
    mixture.reset(state)
    t = SQUAT.duration - 0.5  # near the end: GMT loops past it, TWIST2 holds
    window = window_from_clip(SQUAT, t, t, conventions=mixture.student.contract.reference)
    mixture.step(state, window, t)
    for policy, contract in ((TrackingPolicy("twist2_student"), load_contract("twist2_student")),
                             (TrackingPolicy("gmt_student", onnx_path=_affine_student(tmp_path)),
                              load_contract("gmt_student"))):
        policy.reset(state)
        own = window_from_clip(SQUAT, t, t, conventions=contract.reference)
        expected = policy.observe(state, own, t)
        got = (mixture.teacher if contract.name == "twist2_student" else mixture.student).last_observation
        np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(mixture.teacher_window(window).frames.root_lin_vel, window.frames.root_lin_vel)
    with pytest.raises(ValueError, match="give the clip"):
        DaggerMixture(TrackingPolicy("twist2_student"), mixture.student, 1.0, np.random.default_rng(0))


def test_a_teacher_that_lacks_a_student_joint_is_refused(tmp_path):
    student = TrackingPolicy("gmt_student", onnx_path=_affine_student(tmp_path))
    with pytest.raises(ValueError, match="does not drive student joint"):
        DaggerMixture(student, TrackingPolicy("twist2_student"), teacher_share=1.0, rng=np.random.default_rng(0),
                      clip=SQUAT)


def test_the_deploy_stack_never_imports_the_training_extra():
    code = ("import sys; import gmt_ros.core.policy, gmt_ros.nodes.policy_node, gmt_ros.nodes.bridge_node, "
            "sim2sim.evaluate, sim2sim.batch, gmt_ros.cli; gmt_ros.cli.build_parser(); "
            "bad = [m for m in ('torch', 'onnx', 'onnxscript') if m in sys.modules]; "
            "sys.exit('imported: ' + ', '.join(bad) if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout


def _tiny_config(**changes):
    from gmt_ros.training.config import DistillConfig

    base = dict(motions=("gmt/squat",), iterations=2, episodes_per_iteration=2, first_episodes=2, seconds=2.0,
                hidden=(32,), train_samples=40_000, batch_size=128, lr=3e-3, jobs=1, seed=0, teacher_noise=0.1)
    base.update(changes)
    return DistillConfig(**base)


@needs_training_extra
def test_tiny_distillation_learns_exports_and_resumes(tmp_path):
    import io

    import torch

    from gmt_ros.core.policy import OnnxPolicy
    from gmt_ros.training import distill, model

    out, onnx_path = tmp_path / "run", tmp_path / "export" / "student.onnx"
    log = io.StringIO()
    summary = distill.run(_tiny_config(), out, export_path=onnx_path, write_contract_hash=False, evaluate=False,
                          stream=log, argv=["gmt-ros", "distill", "--first"], commit="1111111")
    hist = summary["history"]
    assert [h["iteration"] for h in hist] == [1, 2]
    assert hist[0]["teacher_share"] == 1.0 and 0.0 < hist[1]["teacher_share"] < 1.0
    assert hist[1]["student_episodes"] == 2  # the student acted in the second iteration
    # Each iteration's rollouts ran that iteration's network (a new export, a new file).
    used = [{r["spec"]["student_onnx"] for r in json.loads((out / "data" / f"iter_{i:03d}_episodes.json").read_text())}
            for i in range(2)]
    assert all(len(u) == 1 for u in used) and used[0] != used[1]
    samples = sum(h["samples"] for h in hist)
    assert 150 <= samples <= 400, samples  # a few hundred samples: 2-second episodes at 50 Hz
    # The loss falls: the MSE on the training data after training is far below the untrained net's.
    assert hist[-1]["train_mse"] < 0.3 * summary["initial_mse"], (hist, summary["initial_mse"])
    assert "iteration 2/2" in log.getvalue() and "2/2 runs" in log.getvalue()  # the progress lines

    # The export reproduces the torch network within 1e-5, through the deployment's ONNX loader
    # (which checks the graph against the GMT contract).
    contract = load_contract("gmt_student")
    ckpt = torch.load(out / distill.CHECKPOINT, weights_only=False)
    net = model.StudentMLP(contract.obs_dim, contract.action_dim, (32,))
    net.load_state_dict(ckpt["model"])
    obs = np.concatenate([np.load(p) for p in sorted((out / "data").glob("iter_*_observations.npy"))])
    onnx = OnnxPolicy(contract, onnx_path)
    got = np.stack([onnx(o) for o in obs[::7]])
    want = model.predict(net, obs[::7])
    assert np.max(np.abs(got - want)) <= 1e-5
    assert summary["onnx_check"]["max_abs_diff"] <= 1e-5

    # The card names the teacher, the clip, the DR preset and the losses.
    card = (onnx_path.parent / "MODEL_CARD.md").read_text()
    for text in ("twist2_student", "gmt/squat", "preset `gmt`", "Final losses", "| 2 |"):
        assert text in card

    # A second run in the same directory must say resume; resuming with more iterations runs only
    # the new one and keeps the first two as they were.
    with pytest.raises(FileExistsError, match="pass resume"):
        distill.run(_tiny_config(), out, export_path=onnx_path, write_contract_hash=False, evaluate=False, stream=log)
    with pytest.raises(ValueError, match=r"differs in \['lr'\]"):
        distill.run(_tiny_config(lr=1e-3), out, resume=True, export_path=onnx_path, write_contract_hash=False,
                    evaluate=False, stream=log)
    log = io.StringIO()
    resumed = distill.run(_tiny_config(iterations=3), out, resume=True, export_path=onnx_path,
                          write_contract_hash=False, evaluate=False, stream=log,
                          argv=["gmt-ros", "distill", "--resume"], commit="2222222")
    assert "resuming" in log.getvalue() and "iteration 1/3" not in log.getvalue()
    assert [h["iteration"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed["history"][:2] == json.loads(json.dumps(hist))
    # The wall time counts both sessions (the --max-minutes budget is the whole training's), and the
    # card names each session's command, commit and iterations.
    assert resumed["wall_s"] > summary["wall_s"]
    spans = [(s["commit"], s["from_iteration"], s["to_iteration"]) for s in resumed["sessions"]]
    assert spans == [("1111111", 0, 2), ("2222222", 2, 3)]
    card = (onnx_path.parent / "MODEL_CARD.md").read_text()
    assert "| 1 | `gmt-ros distill --first` | 1111111 | 1–2 |" in card
    assert "| 2 | `gmt-ros distill --resume` | 2222222 | 3–3 |" in card


@needs_training_extra
def test_contract_hash_is_written_in_place(tmp_path):
    from gmt_ros.training import distill

    lines = (REPO / "models" / "gmt_student" / "contract.yaml").read_text().splitlines(keepends=True)
    base = [line for line in lines if not line.startswith("onnx_sha256:")]
    path = tmp_path / "contract.yaml"
    path.write_text("".join(base))
    distill.set_contract_hash(path, "a" * 64)
    after = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(base) if line.startswith("onnx:")) + 1
    assert after == base[:at] + ["onnx_sha256: " + "a" * 64 + "\n"] + base[at:]
    distill.set_contract_hash(path, "b" * 64)
    assert path.read_text() == "".join(after).replace("a" * 64, "b" * 64)
    assert load_contract(path).onnx_sha256 == "b" * 64


def test_distill_without_the_extra_says_how_to_install_it(monkeypatch, capsys):
    from gmt_ros import cli
    from gmt_ros.tools import distill as tool

    monkeypatch.setattr(tool, "missing_training_extra", lambda: ["torch"])
    code = cli.main(["distill", "--out", "/nonexistent/never"])
    err = capsys.readouterr().err
    assert code == 2 and "training extra is not installed (missing torch)" in err and "requirements-train.txt" in err


def test_wrists_are_not_student_joints():
    gmt = load_contract("gmt_student")
    assert not any("wrist" in n for n in gmt.joint_names)
    assert len(gmt.joint_names) == 23 and set(gmt.held_slots) == {g1.SLOT_OF[n] for n in g1.JOINT_NAMES if "wrist" in n}


def test_a_rollout_worker_runs_the_network_its_spec_names(tmp_path):
    """A worker keeps its student between episodes, but never past a new export of it (the same
    path rewritten counts as new)."""
    import os

    from test_policy import affine_onnx

    from gmt_ros.core.clip_library import resolve_clip
    from gmt_ros.training import rollouts

    rollouts._init_worker(rollouts.PolicyNames("twist2_student", "gmt_student"))
    path = tmp_path / "student.onnx"
    spec = rollouts.EpisodeSpec(clip="gmt/squat", clip_path=str(resolve_clip("gmt/squat")), seed=0, dr="none",
                                teacher_share=0.0, student_onnx=str(path), seconds=0.1)
    for k, bias in enumerate((0.0, 0.25, 0.5)):
        affine_onnx(path, np.zeros((2154, 23)), np.full(23, bias))
        os.utime(path, ns=(10**18 + k, 10**18 + k))
        out = rollouts.run_one(spec)
        # the second tick's observation carries the first tick's action: this export's output
        np.testing.assert_allclose(out["observations"][1][651:674], bias, atol=1e-6)
        assert out["report"]["student_ticks"] == out["report"]["samples"] == 5
