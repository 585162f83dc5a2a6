"""sim2sim.send_path_report: pairing of runs across send paths, the paired sign test, the table."""
import json

import pytest

from sim2sim import send_path_report as spr


def _row(clip, seed, path, fell, **extra):
    return {"clip": clip, "seed": seed, "dr_preset": "gmt", "command_limits": path, "fell": fell,
            "duration_s": 1.0, "e_mpkpe_mm": 40.0, "e_mpjpe_rad": 0.09, "e_vel_mps": 0.4, "e_yaw_vel_radps": 0.5,
            "clipped": {"joint_limit": 2, "velocity_limit": 1, "torque_limit": 0}, **extra}


def _write(tmp_path, name, rows):
    d = tmp_path / name
    d.mkdir()
    (d / "runs.json").write_text(json.dumps(rows))
    return d


def test_sign_test_is_exact():
    assert spr.sign_test(0, 0) == 1.0
    assert spr.sign_test(3, 3) == 1.0
    assert spr.sign_test(5, 0) == pytest.approx(2 / 32)  # all 5 discordant pairs one way: 2 * 0.5^5
    assert spr.sign_test(10, 2) == pytest.approx(2 * sum(__import__("math").comb(12, i) for i in range(3)) / 4096)


def test_paths_are_paired_by_clip_and_seed_and_compared_with_the_baseline(tmp_path, capsys):
    raw = [_row("a", s, "raw", s in (0, 1)) for s in range(4)]
    bridge0 = [_row("a", s, "bridge", s in (0, 2, 3), fall_detected="fall detected: tilt" if s else None,
                    command_fault="unsafe command" if s == 0 else None) for s in range(2)]
    bridge1 = [_row("a", s, "bridge", s in (0, 2, 3), fall_detected="fall detected: tilt") for s in range(2, 4)]
    dirs = [_write(tmp_path, "raw", raw), _write(tmp_path, "b0", bridge0), _write(tmp_path, "b1", bridge1)]
    assert spr.main([str(d) for d in dirs] + ["--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "| raw | 4 | 2 |" in out and "| bridge | 4 | 3 |" in out
    result = json.loads((tmp_path / "c.json").read_text())
    bridge = result[1]
    assert bridge["send_path"] == "bridge" and bridge["only_this_fell"] == 2 and bridge["only_baseline_fell"] == 1
    assert bridge["ended_by"] == {"check": 2, "command": 1, "criterion": 0}
    assert bridge["clipped"]["joint_limit"] == 8


def test_unpaired_or_mixed_runs_are_refused(tmp_path, capsys):
    raw = _write(tmp_path, "raw", [_row("a", 0, "raw", False)])
    other = _write(tmp_path, "b", [_row("a", 1, "bridge", False)])
    assert spr.main([str(raw), str(other)]) == 2
    assert "not the same as the others" in capsys.readouterr().err
    dup = _write(tmp_path, "dup", [_row("a", 0, "raw", False)])
    assert spr.main([str(raw), str(dup)]) == 2
    assert "in two directories" in capsys.readouterr().err
    hard = _write(tmp_path, "hard", [dict(_row("a", 0, "bridge", False), dr_preset="hard")])
    assert spr.main([str(raw), str(hard)]) == 2
    assert "mix randomisation presets" in capsys.readouterr().err
    assert spr.main([str(tmp_path / "nothing")]) == 2
