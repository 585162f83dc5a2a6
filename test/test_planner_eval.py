"""The offline loop of the planner (``python -m sim2sim.planner_eval``): planner -> policy ->
MuJoCo G1 through ``sim2sim.evaluate.run_episode``, a few seconds of a script, so that a change in
the loop's interfaces (e.g. how a reference is sampled) fails here rather than at tuning time."""
import json

from sim2sim import planner_eval


def test_offline_loop_walks_a_short_script(tmp_path):
    script = tmp_path / "script.yaml"
    script.write_text("rate_hz: 20.0\nsegments:\n  - {name: forward, duration_s: 4.0, vx: 0.5}\n")
    out = tmp_path / "report.json"
    assert planner_eval.main(["--script", str(script), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["upright"] and report["seconds"] == 4.0
    (forward,) = report["segments"]
    assert forward["command"] == [0.5, 0.0, 0.0] and forward["settled_windows"] > 0
    assert 0.2 < forward["settled_mean"][0] < 0.8, forward  # it walked forward
    assert report["planner"]["velocity_feedback"] and report["odometry_error"] is not None
