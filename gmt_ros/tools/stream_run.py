"""`gmt-ros sim2sim --source stream`: a clip streamed live through gmt_stream in the node graph.

    gmt-ros sim2sim --source stream --motion NAME [--stream-rate 30] [--stream-jitter-ms 30]
                    [--stream-drop 0.05] [--stream-seed 0] [--stream-transport zmq|ros]
                    [--stream-velocities] [--compare-player] [--report OUT.json] [sim2sim options]

The graph is the sim2sim graph with gmt_stream in the player's place (``gmt_ros.graph.SOURCES``).
Once the robot stands under the policy (``Sim2SimSession.start``), a producer process
(``gmt-ros stream-clip``, ``gmt_ros.tools.stream_producer``) streams the clip frame by frame with
the requested rate, delivery jitter and losses, holding its first frame for ``LEAD_IN_S`` first
(the operator standing still while gmt_stream blends in). The clip's time c is then the
reference at wall time ``clip_start + c + delay_s`` (the producer's stamp of clip time 0, plus
gmt_stream's delay buffer): that interval is scored. After the producer ends, the run goes on
until gmt_stream has held, eased to standing and is idle, and the robot must be upright to then.

Measured, besides everything ``gmt-ros sim2sim`` reports:

- tracking errors against the clip itself (``vs_clip``: the clip's frames at the times above;
  the player's run is scored the same way against its play start), so the stream and the player
  are compared on the same reference; and against the windows gmt_stream published (the usual
  columns: what the policy was asked to track);
- frame-in -> PD target latency: for every frame, from its arrival at gmt_stream (the node's
  /gmt/stream/timing: each window's stamp, its publish time and the arrival times of the frames it
  is the first to carry) to the receipt here of the first PD target (/gmt/joint_targets) whose policy tick began
  after that window reached this process (a tick takes the newest window it has);
- the producer's latency, jitter and counts as gmt_stream measured them (its status), and what
  the producer sent (its log).

``--compare-player`` runs the same clip through the player afterwards (same graph otherwise) and
reports the stream's vs-clip errors as ratios of the player's.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

LEAD_IN_S = 1.5  # the producer holds the clip's first frame: gmt_stream's 1 s blend-in + its delay
STREAM_ENDPOINT = "tcp://127.0.0.1:*"  # the node binds a free loopback port and reports it
PRODUCER_START_TIMEOUT_S = 30.0
STANDING_TIMEOUT_S = 10.0  # after the producer ends: gmt_stream's dead_after_s + blend_out_s, and then some


@dataclass
class StreamLink:
    """What the producer imitates (``gmt-ros stream-clip`` options)."""

    rate: float = 30.0
    jitter_ms: float = 0.0
    drop: float = 0.0
    seed: int = 0
    transport: str = "zmq"
    velocities: bool = False
    lead_in_s: float = LEAD_IN_S

    def check(self) -> None:
        for label, value, ok in (("--stream-rate", self.rate, self.rate > 0),
                                 ("--stream-jitter-ms", self.jitter_ms, self.jitter_ms >= 0),
                                 ("--stream-drop", self.drop, 0 <= self.drop < 1)):
            if not (math.isfinite(value) and ok):
                raise ValueError(f"{label} out of range: {value}")
        if self.transport not in ("zmq", "ros"):
            raise ValueError(f"--stream-transport must be zmq or ros, got {self.transport!r}")


def node_settings(link: StreamLink) -> dict[str, str]:
    """gmt_stream's settings for a run: a free loopback ZMQ port."""
    return {"zmq_endpoint": STREAM_ENDPOINT}


def producer_argv(clip: str, link: StreamLink, status: dict, log_path: Path) -> list[str]:
    exe = Path(sys.executable).parent / "gmt-ros"
    argv = [str(exe)] if exe.is_file() else [sys.executable, "-m", "gmt_ros.cli"]
    argv += ["stream-clip", clip, "--rate", f"{link.rate:g}", "--jitter-ms", f"{link.jitter_ms:g}",
             "--drop", f"{link.drop:g}", "--seed", str(link.seed), "--lead-in-s", f"{link.lead_in_s:g}",
             "--transport", link.transport, "--log", str(log_path)]
    if link.transport == "zmq":
        argv += ["--endpoint", status["zmq_endpoint"]]
    else:
        argv += ["--topic", status["frame_topic"]]
    if link.velocities:
        argv.append("--velocities")
    return argv


def play_stream(session, timeout_s: float | None = None) -> None:
    """Stream the clip (a producer process) and follow it to the end, then to standing; sets the
    session's scored interval (``play_start``/``play_end``) from the producer's log."""
    from gmt_ros.tools.process_graph import Sim2SimError

    if session.aborted:
        return
    obs, link = session.observer, session.opt.stream
    status = session._wait(lambda: obs.snapshot("stream_latest"), 10.0, "no /gmt/stream/status from gmt_stream")
    scored = min(session.opt.seconds or session.clip_duration, session.clip_duration)
    session.scored_s = scored
    log_path = session.log_dir / "producer.json"
    with open(session.log_dir / "producer.log", "w") as out:
        cpu_start = (time.monotonic(), session.graph.cpu_seconds())
        proc = subprocess.Popen(producer_argv(session.opt.motion, link, status, log_path), stdout=out,
                                stderr=subprocess.STDOUT, env=session.graph.env, start_new_session=True)
        _match_priority(proc.pid, session)
        deadline = time.monotonic() + (timeout_s or link.lead_in_s + scored + PRODUCER_START_TIMEOUT_S)
        try:
            _follow_producer(session, proc, deadline)
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)
    if proc.returncode != 0 or not log_path.is_file():
        raise Sim2SimError(f"the producer (gmt-ros stream-clip) failed with exit code {proc.returncode}:\n"
                           f"{(session.log_dir / 'producer.log').read_text()[-2000:]}")
    session.producer_log = json.loads(log_path.read_text())
    delay = float(status["delay_s"])
    session.play_start = session.producer_log["clip_start_unix"] + delay
    end = session.play_start + scored
    session.play_end = end if session.ended_early_by is None else min(session.play_end, end)
    if session.ended_early_by is None:
        while time.time() < session.play_end + 0.1:
            time.sleep(0.05)
        session._note_cpu(cpu_start)
        idle = _wait_standing(session)
        session.stream_standing_at = idle
    else:
        session.stream_standing_at = None


def _follow_producer(session, proc, deadline: float) -> None:
    """Until the producer exits: the nodes must stay up; a supervisor fault ends the clip early."""
    while proc.poll() is None:
        session._check_nodes()
        if session.stopped_by_fault("the clip"):
            return
        if time.monotonic() > deadline:
            raise session._fail(f"the producer did not finish the clip within its time; its log:\n"
                                f"{(session.log_dir / 'producer.log').read_text()[-2000:]}")
        time.sleep(0.05)


def _wait_standing(session) -> float | None:
    """Wall time gmt_stream reported idle (standing) after the producer ended; None on timeout."""
    deadline = time.monotonic() + STANDING_TIMEOUT_S
    since = session.play_end
    while time.monotonic() < deadline:
        for t, s in session.observer.snapshot("stream"):
            if t >= since and s.get("state") == "idle":
                time.sleep(0.5)  # standing for a moment
                return t
        if session.supervisor_state().get("fault"):
            return None
        time.sleep(0.05)
    session.notes.append(f"gmt_stream was not idle (standing) {STANDING_TIMEOUT_S:.0f} s after the clip")
    return None


def _match_priority(pid: int, session) -> None:
    """The producer runs at the nodes' priority: its own timing is part of the link, not of the
    machine's load."""
    nice = session.graph.nice if isinstance(session.graph.nice, int) else 0
    if nice:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------
# Measurements


def _percentiles(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    if not a.size:
        return {"n": 0}
    out = {f"p{q}": round(float(np.percentile(a, q)), 2) for q in (50, 90, 95, 99)}
    return out | {"mean": round(float(a.mean()), 2), "max": round(float(a.max()), 2), "n": int(a.size)}


def frame_to_target_latency(timing, window_receipts, target_stamps, target_times) -> dict:
    """Milliseconds from each frame's arrival at gmt_stream to the receipt of the first PD target
    whose policy tick began after the window first carrying the frame was received (see the
    module docstring), and its parts: arrival -> window published (gmt_stream's tick),
    window received -> policy tick (the two 50 Hz timers' phase), tick -> target received.
    ``timing``: rows [window stamp, publish time, arrival, ...]; ``window_receipts``: (window stamp, receipt
    time); ``target_stamps`` / ``target_times``: each target's stamp (tick start) and receipt time,
    in receipt order."""
    if not timing or not window_receipts or not len(target_stamps):
        return {"n": 0}
    receipts = sorted(window_receipts)
    stamps = np.array([s for s, _ in receipts])
    t_stamps, t_times = np.asarray(target_stamps, dtype=np.float64), np.asarray(target_times, dtype=np.float64)
    total, to_window, to_tick, to_target, unmatched = [], [], [], [], 0
    for row in timing:
        window, published, arrivals = row[0], row[1], row[2:]
        i = int(np.searchsorted(stamps, window))
        near = [j for j in (i - 1, i) if 0 <= j < len(stamps) and abs(stamps[j] - window) < 1e-5]
        received = max(receipts[near[0]][1], published) if near else math.inf
        after = np.flatnonzero(t_stamps >= received)
        if not after.size:
            unmatched += len(arrivals)
            continue
        k = after[0]
        total += [float(t_times[k] - a) * 1e3 for a in arrivals]
        to_window += [(published - a) * 1e3 for a in arrivals]
        to_tick.append((t_stamps[k] - received) * 1e3)
        to_target.append((t_times[k] - t_stamps[k]) * 1e3)
    return _percentiles(total) | {"unmatched": unmatched, "parts": {
        "arrival_to_window": _percentiles(to_window), "window_to_policy_tick": _percentiles(to_tick),
        "tick_to_target": _percentiles(to_target)}}


def clip_errors(session, trace) -> dict | None:
    """Tracking errors of the scored interval against the clip itself, at play_start + clip time."""
    from gmt_ros.core.clip_library import load_named_clip
    from sim2sim.trace import ReferenceSamples, tracking_errors

    t0, t1 = session.play_start, session.play_end
    if t0 is None or t1 is None or t1 <= t0:
        return None
    clip = load_named_clip(session.opt.motion)
    times = np.arange(0.0, min(t1 - t0, clip.duration) + 1e-9, 0.02)
    f = clip.sample(times)
    samples = [(t0 + t, f.root_pos[i], f.root_quat[i], f.root_lin_vel[i], f.root_ang_vel[i], f.joint_pos[i],
                np.asarray(clip.joint_mask, dtype=bool)) for i, t in enumerate(times)]
    mask = np.zeros(29, dtype=bool)
    mask[np.asarray(session.contract.slots)] = True
    err = tracking_errors(trace, ReferenceSamples.from_samples(samples), mask, t0, t1)
    return {k: (None if not math.isfinite(v) else round(float(v), 5)) for k, v in err.items()
            if k in ("e_mpjpe_rad", "e_mpkpe_mm", "e_vel_mps", "e_yaw_vel_radps")} | {"scored_rows": err["ticks"]}


def stream_report(session, trace) -> dict:
    """The stream's part of the report (the session is finished)."""
    obs = session.observer_snapshot
    statuses = obs["stream"]
    last = statuses[-1][1] if statuses else {}
    upright_to_standing = None
    if session.play_start is not None and getattr(session, "stream_standing_at", None):
        fell, _, _ = trace.fell_between(session.play_start, session.stream_standing_at)
        upright_to_standing = not fell
    log = getattr(session, "producer_log", None) or {}
    return {
        "link": asdict(session.opt.stream),
        "producer": {k: log.get(k) for k in ("transport", "frames", "sent", "lost", "sent_out_of_order", "joints",
                                             "send_late_ms", "clip_start_unix", "lost_frames")},
        "gmt_stream": {k: last.get(k) for k in ("delay_s", "predict_s", "clock", "counts", "refused", "latency_ms",
                                                "jitter_ms", "period_ms", "rate_hz")},
        "states": _state_changes(statuses, session._rel),
        "frame_to_target_ms": frame_to_target_latency(obs["stream_timing"], obs["window_receipts"],
                                                      obs["target_stamps"], obs["target_times"]),
        "upright_until_standing": upright_to_standing,
        "standing_at_s": session._rel(getattr(session, "stream_standing_at", None)),
    }


def _state_changes(statuses, rel) -> list:
    out, last = [], None
    for t, s in statuses:
        if s.get("state") != last:
            out.append({"t": rel(t), "state": s.get("state")})
            last = s.get("state")
    return out


def stream_summary_line(report: dict) -> str:
    s = report["stream"]
    vc = report.get("vs_clip") or {}
    lat = s["gmt_stream"].get("latency_ms") or {}
    f2t = s["frame_to_target_ms"]
    counts = s["gmt_stream"].get("counts") or {}
    link = s["link"]
    return (f"stream {report['clip']}: {link['rate']:g} Hz ±{link['jitter_ms']:g} ms, {link['drop'] * 100:g} % lost "
            f"({s['producer']['lost']} of {s['producer']['frames']}, {counts.get('reordered', 0)} reordered) over "
            f"{link['transport']} | vs clip E_mpjpe {_f(vc.get('e_mpjpe_rad'), '.3f')} rad, E_mpkpe "
            f"{_f(vc.get('e_mpkpe_mm'), '.1f')} mm | producer latency p50 {lat.get('p50')} p99 {lat.get('p99')} ms, "
            f"jitter {s['gmt_stream'].get('jitter_ms')} ms | frame-in -> PD target p50 {f2t.get('p50')} p90 "
            f"{f2t.get('p90')} p99 {f2t.get('p99')} max {f2t.get('max')} ms (n {f2t.get('n')}) | delay "
            f"{s['gmt_stream'].get('delay_s')} s | upright until standing: {s['upright_until_standing']}")


def _f(x, spec):
    return "–" if x is None else format(x, spec)


ERROR_KEYS = ("e_mpjpe_rad", "e_mpkpe_mm", "e_vel_mps", "e_yaw_vel_radps")


def comparison(stream: dict, player: dict) -> dict:
    """The stream's vs-clip errors as ratios of the player's on the same clip."""
    a, b = stream.get("vs_clip") or {}, player.get("vs_clip") or {}
    ratios = {k: (round(a[k] / b[k], 3) if a.get(k) is not None and b.get(k) else None) for k in ERROR_KEYS}
    both_upright = bool(stream.get("completed")) and bool(player.get("completed"))
    return {"stream_over_player": ratios, "both_to_the_end_upright": both_upright,
            "within_15_percent": {k: (r is not None and r <= 1.15) for k, r in ratios.items()}}


def comparison_markdown(stream: dict, player: dict, cmp: dict) -> str:
    head = "| source | to the end | " + " | ".join(ERROR_KEYS) + " |\n|---|---|" + "---|" * len(ERROR_KEYS) + "\n"
    rows = []
    for name, r in (("player", player), ("stream", stream)):
        vc = r.get("vs_clip") or {}
        rows.append(f"| {name} | {'yes' if r.get('completed') else 'no'} | "
                    + " | ".join(_f(vc.get(k), ".4f") for k in ERROR_KEYS) + " |")
    rows.append("| stream / player | | " + " | ".join(_f(cmp["stream_over_player"][k], ".3f") for k in ERROR_KEYS) + " |")
    return head + "\n".join(rows) + "\n"
