"""Section "graph", the analysis: records of the probed nodes (``probes``) -> the policy's tick
figures and the latencies (a) inside the bridge and (b) end to end, with its parts."""
from __future__ import annotations

import math

import numpy as np

from gmt_ros.tools.bench.report import percentiles_ms


def _stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _in(t: np.ndarray, span) -> np.ndarray:
    return (t >= span[0]) & (t < span[1])


def analyze_graph(sim: dict, bridge: dict, policy: dict, span: tuple[float, float], dt: float) -> dict:
    """Latency and tick figures over one measurement phase ``span`` (CLOCK_MONOTONIC seconds).

    Records (arrays, one row per event; stamps in ns of the ROS clock, times in s monotonic):
    sim: ``pub_t``, ``pub_tick`` (lowstate Write called, its tick);
    bridge: ``state_t``, ``state_wall``, ``state_tick`` (lowstate callback entry, time.time(),
    tick); ``write_t``, ``write_stamp``, ``write_policy``, ``write_ok`` (end of each writer tick,
    header stamp of the target it carried (0: none or unknown), supervisor in policy mode, a
    lowcmd was written); policy: ``tick_t``, ``tick_s``, ``step_s``, ``published``,
    ``target_stamp``, ``js_stamp``, ``js_t`` (tick start, its duration, the step's, whether a
    target was published and its stamp, the stamp and receipt time of the /joint_states used).
    """
    out: dict = {}
    tick_t = np.asarray(policy["tick_t"])
    in_phase = _in(tick_t, span)
    published = in_phase & np.asarray(policy["published"], bool)
    out["policy_tick_ms"] = percentiles_ms(np.asarray(policy["tick_s"])[published])
    out["policy_step_ms"] = percentiles_ms(np.asarray(policy["step_s"])[published])
    ticks = tick_t[in_phase]
    periods = np.diff(ticks)
    out["tick_period_ms"] = percentiles_ms(periods)
    out["tick_period_deviation_ms"] = percentiles_ms(np.abs(periods - dt))
    out["ticks"] = int(in_phase.sum())
    out["ticks_published"] = int(published.sum())

    # (a) lowstate arrival in the bridge -> the next lowcmd write
    write_t = np.asarray(bridge["write_t"])
    write_ok = np.asarray(bridge["write_ok"], bool)
    written = write_t[write_ok]
    state_t = np.asarray(bridge["state_t"])
    arrivals = state_t[_in(state_t, span)]
    nxt = np.searchsorted(written, arrivals)
    has_next = nxt < written.size
    out["bridge_state_to_write_ms"] = percentiles_ms(written[nxt[has_next]] - arrivals[has_next])

    # (b) sim publish -> the first write carrying a target computed from that state
    state_wall_ns = np.round(np.asarray(bridge["state_wall"]) * 1e9).astype(np.int64)
    state_tick = np.asarray(bridge["state_tick"], np.int64)
    pub_t = np.asarray(sim["pub_t"])
    pub_tick = np.asarray(sim["pub_tick"], np.int64)
    pub_of_tick = dict(zip(pub_tick.tolist(), pub_t.tolist()))  # a tick is published once
    stamps = np.asarray(bridge["write_stamp"], np.int64)
    carrying = write_ok & np.asarray(bridge["write_policy"], bool) & (stamps > 0)
    first_write: dict[int, float] = {}
    for stamp, t in zip(stamps[carrying].tolist(), write_t[carrying].tolist()):
        first_write.setdefault(stamp, t)
    rows, missing = [], {"js_unknown": 0, "state_unknown": 0, "not_written": 0}
    for k in np.flatnonzero(published):
        js_stamp, js_t = int(policy["js_stamp"][k]), float(policy["js_t"][k])
        if js_stamp <= 0 or not math.isfinite(js_t):
            missing["js_unknown"] += 1
            continue
        # The /joint_states stamp is taken inside the lowstate's callback: the latest arrival before it.
        i = int(np.searchsorted(state_wall_ns, js_stamp, side="right")) - 1
        publish_t = pub_of_tick.get(int(state_tick[i])) if i >= 0 else None
        if publish_t is None:
            missing["state_unknown"] += 1
            continue
        write = first_write.get(int(policy["target_stamp"][k]))
        if write is None:
            missing["not_written"] += 1
            continue
        rows.append((publish_t, state_t[i], js_t, tick_t[k], write))
    r = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    publish_t, arrival_t, js_t, start_t, write = r.T
    out["e2e_state_to_write_ms"] = percentiles_ms(write - publish_t)
    out["e2e_parts_ms"] = {
        "sdk_state": percentiles_ms(arrival_t - publish_t),
        "transport_in": percentiles_ms(js_t - publish_t),
        "sample_wait": percentiles_ms(start_t - js_t),
        "pipeline": percentiles_ms(write - start_t),
        "processing": percentiles_ms((write - publish_t) - (start_t - js_t)),
    }
    out["e2e_unmatched_ticks"] = missing
    return out
