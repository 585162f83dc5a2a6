"""Section "rtf": the real-time factor of the headless in-process sim2sim loop (``gmt-ros eval``'s)."""
from __future__ import annotations

import time

from gmt_ros.core.contract import DEFAULT_POLICY


def measure_rtf(seconds: float, motion: str, dr: str, seed: int = 0, contract: str = DEFAULT_POLICY) -> dict:
    """Simulated / wall seconds of the episode loop; building the randomised model (MuJoCo
    compile, ≈ 1-2 s, once per episode) is timed apart and reported as ``build_s``."""
    from gmt_ros.core.clip_library import resolve_clip
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.motion import load_clip
    from gmt_ros.core.policy import TrackingPolicy
    from sim2sim.evaluate import make_sim, run_episode

    c = load_contract(contract)
    clip = load_clip(resolve_clip(motion))
    policy = TrackingPolicy(c)
    t0 = time.perf_counter()
    sim = make_sim(seed, dr)
    t1 = time.perf_counter()
    result = run_episode(c, clip, seconds=seconds, seed=seed, sim=sim, policy=policy)
    wall = time.perf_counter() - t1
    # A fall ends the episode early; the simulated time is what ran (ticks plus the fall tick).
    simulated = (result.policy_ticks + (1 if result.fell else 0)) / c.rate_hz
    return {"motion": clip.name, "dr": dr, "seed": seed, "sim_s": round(simulated, 3), "wall_s": round(wall, 3),
            "build_s": round(t1 - t0, 3), "real_time_factor": round(simulated / wall, 3) if wall > 0 else None,
            "real_time_factor_with_build": round(simulated / (wall + t1 - t0), 3), "fell": result.fell}
