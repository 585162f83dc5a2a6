"""Offscreen MP4 of an episode: the simulated G1 beside a translucent ghost of the reference.

Headless OpenGL: MuJoCo's EGL or OSMesa context (Mesa's software rasteriser on a machine without
a GPU). :func:`choose_gl_backend` honours ``MUJOCO_GL`` (egl / osmesa) and otherwise tries EGL,
then OSMesa, each in a short-lived child process, because PyOpenGL binds one platform per process
for good. The GL context and MuJoCo's render context are managed here directly (not through
``mujoco.Renderer``, whose backend is fixed by ``MUJOCO_GL`` when mujoco is first imported).

The ghost is a second MjData of the same model posed by the reference kinematics and added to
the scene with ``mjv_addGeoms`` (robot bodies only), recoloured translucent and shifted sideways
by ``ghost_offset_m`` to the left of the clip's initial heading (0: overlaid on the reference's
true place). The camera tracks the midpoint of robot and ghost, facing the clip's initial
heading from the front-right. Frames are taken at ``fps`` on the physics clock (1 ms exact) and
encoded to H.264 (yuv420p) by the ffmpeg binary that ships in the imageio-ffmpeg wheel.

Cost: shadows, reflections and multisampling are off (with llvmpipe they cost 3-4x); a 480×360
frame of two robots renders in ≈ 0.1-0.3 s on this 2-core machine.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

GL_BACKENDS = ("egl", "osmesa")
GHOST_RGBA = (0.35, 0.75, 1.0, 0.35)
_FONT_SCALE = 100  # mjtFontScale.mjFONTSCALE_100

_PROBE = """
import mujoco.{backend} as gl
import mujoco
ctx = gl.GLContext(16, 16)
ctx.make_current()
con = mujoco.MjrContext(mujoco.MjModel.from_xml_string("<mujoco/>"), 100)
con.free()
ctx.free()
"""


class RenderError(RuntimeError):
    """No working offscreen OpenGL, or the video could not be written."""


def _probe(backend: str) -> str | None:
    """None if ``backend`` can make a MuJoCo render context in a fresh process, else why not."""
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE.format(backend=backend)], env=env, check=False,
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "timed out"
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {proc.returncode}"


def choose_gl_backend(requested: str = "auto") -> str:
    """The offscreen GL backend to use in this process ("egl" or "osmesa").

    ``requested``: "egl", "osmesa" or "auto" (MUJOCO_GL if it names one of them, else the first of
    EGL, OSMesa that works). Once PyOpenGL is loaded its platform is fixed, so that one is used.
    Raises RenderError naming what failed.
    """
    if requested not in ("auto", *GL_BACKENDS):
        raise ValueError(f"unknown GL backend {requested!r}; choose auto, egl or osmesa")
    if "OpenGL" in sys.modules:  # PyOpenGL already bound to a platform in this process
        bound = os.environ.get("PYOPENGL_PLATFORM", "").lower()
        if bound not in GL_BACKENDS or requested not in ("auto", bound):
            raise RenderError(f"PyOpenGL is already loaded in this process with platform {bound or '(default)'!r}; "
                              f"offscreen rendering needs {requested if requested != 'auto' else 'egl or osmesa'}: "
                              f"run the render in a fresh process")
        return bound
    if requested != "auto":
        candidates = (requested,)
    else:
        env_choice = os.environ.get("MUJOCO_GL", "").lower().strip()
        candidates = (env_choice,) if env_choice in GL_BACKENDS else GL_BACKENDS
    failures = []
    for backend in candidates:
        why = _probe(backend)
        if why is None:
            return backend
        failures.append(f"{backend}: {why}")
    raise RenderError("no working offscreen OpenGL backend (" + "; ".join(failures) + "); on Debian/Ubuntu "
                      "install libegl1 and libgl1 (EGL) or libosmesa6 (OSMesa), as scripts/setup.sh does")


def _gl_context_class(backend: str):
    os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    if backend == "egl":
        from mujoco.egl import GLContext
    else:
        from mujoco.osmesa import GLContext
    return GLContext


class GhostRenderer:
    """Renders frames of a G1Sim with the reference ghost; ``frame(t, sim)`` returns RGB (H, W, 3)."""

    def __init__(self, model, clip, width: int = 480, height: int = 360, ghost_offset_m: float = 1.0,
                 backend: str = "auto", camera_distance_m: float = 2.4, caption: str = ""):
        import mujoco

        from gmt_ros.core import rotations
        from sim2sim.g1_model import g1_index

        for name, value in (("width", width), ("height", height)):
            if int(value) != value or not 16 <= value <= 4096 or value % 2:
                raise ValueError(f"{name} must be an even number of pixels in [16, 4096], got {value}")
        if not math.isfinite(ghost_offset_m):
            raise ValueError(f"ghost_offset_m must be finite, got {ghost_offset_m}")
        self.mj = mujoco
        self.model, self.clip = model, clip
        self.width, self.height = int(width), int(height)
        self.caption = caption
        self.backend = choose_gl_backend(backend)
        self._ctx = _gl_context_class(self.backend)(self.width, self.height)
        self._ctx.make_current()
        # Offscreen buffer at least the frame size; no multisampling (software GL: 2x the cost).
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        model.vis.quality.offsamples = 0
        self._con = mujoco.MjrContext(model, _FONT_SCALE)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
        self._scene = mujoco.MjvScene(model, maxgeom=4 * model.ngeom + 100)
        self._opt = mujoco.MjvOption()
        self._pert = mujoco.MjvPerturb()
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        self._viewport = mujoco.MjrRect(0, 0, self.width, self.height)
        self._rgb = np.empty((self.height, self.width, 3), dtype=np.uint8)
        self._ghost = mujoco.MjData(model)
        idx = g1_index(model)
        self._root, self._jq = idx.root_qpos, idx.joint_qpos
        # Ghost offset and camera direction from the clip's initial heading.
        f0 = clip.sample(0.0)
        yaw0 = float(rotations.to_rpy(f0.root_quat[0])[2])
        left = np.array([-math.sin(yaw0), math.cos(yaw0), 0.0])
        self._offset = ghost_offset_m * left
        self._cam.azimuth = math.degrees(yaw0) + 180.0 + 25.0  # from the front, a little to the right
        self._cam.elevation = -12.0
        self._cam.distance = camera_distance_m + abs(ghost_offset_m)
        self._lookat = None
        self.fell_at: float | None = None
        self.frames_rendered = 0

    def _pose_ghost(self, t: float) -> np.ndarray:
        ref = self.clip.sample(t)
        d, r = self._ghost, self._root
        d.qpos[r:r + 3] = ref.root_pos[0] + self._offset
        d.qpos[r + 3:r + 7] = ref.root_quat[0]
        d.qpos[self._jq] = ref.joint_pos[0]
        self.mj.mj_kinematics(self.model, d)
        return d.qpos[r:r + 3].copy()

    def frame(self, t: float, sim) -> np.ndarray:
        mj = self.mj
        ghost_root = self._pose_ghost(t)
        robot_root = sim.root_pose()[0]
        target = 0.5 * (robot_root + ghost_root)
        target[2] = 0.75
        # Smooth the camera target (pelvis sway would shake the picture); ~0.2 s time constant at 30 fps.
        self._lookat = target if self._lookat is None else self._lookat + 0.15 * (target - self._lookat)
        self._cam.lookat[:] = self._lookat
        scn = self._scene
        mj.mjv_updateScene(self.model, sim.data, self._opt, self._pert, self._cam, mj.mjtCatBit.mjCAT_ALL, scn)
        first_ghost = scn.ngeom
        mj.mjv_addGeoms(self.model, self._ghost, self._opt, self._pert, mj.mjtCatBit.mjCAT_DYNAMIC, scn)
        for i in range(first_ghost, scn.ngeom):
            g = scn.geoms[i]
            g.rgba[:] = GHOST_RGBA
            g.matid = -1  # plain colour, no texture
            g.reflectance = 0.0
        scn.flags[mj.mjtRndFlag.mjRND_SHADOW] = 0
        scn.flags[mj.mjtRndFlag.mjRND_REFLECTION] = 0
        mj.mjr_render(self._viewport, scn, self._con)
        status = f"FELL at {self.fell_at:.2f} s" if self.fell_at is not None else ""
        mj.mjr_overlay(mj.mjtFont.mjFONT_NORMAL, mj.mjtGridPos.mjGRID_TOPLEFT, self._viewport,
                       self.caption, f"t = {t:5.2f} s", self._con)
        mj.mjr_overlay(mj.mjtFont.mjFONT_NORMAL, mj.mjtGridPos.mjGRID_BOTTOMLEFT, self._viewport,
                       "solid: robot   blue ghost: reference", "", self._con)
        if status:
            mj.mjr_overlay(mj.mjtFont.mjFONT_BIG, mj.mjtGridPos.mjGRID_TOPRIGHT, self._viewport, status, "", self._con)
        mj.mjr_readPixels(self._rgb, None, self._viewport, self._con)
        self.frames_rendered += 1
        return np.flipud(self._rgb).copy()  # OpenGL rows run bottom-up

    def close(self) -> None:
        if self._con is not None:
            self._con.free()
            self._con = None
        if self._ctx is not None:
            self._ctx.free()
            self._ctx = None


class Mp4Writer:
    """H.264 MP4 (yuv420p, plays everywhere) through imageio-ffmpeg's bundled ffmpeg."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float = 30.0, crf: int = 23):
        import imageio_ffmpeg

        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ValueError(f"video output must be a .mp4 file, got {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size = (int(width), int(height))
        self.frames = 0
        self._gen = imageio_ffmpeg.write_frames(
            str(self.path), self.size, fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
            macro_block_size=2, output_params=["-crf", str(int(crf)), "-preset", "veryfast"],
            ffmpeg_log_level="error")
        self._gen.send(None)

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape != (self.size[1], self.size[0], 3) or rgb.dtype != np.uint8:
            raise ValueError(f"frame has shape {rgb.shape} {rgb.dtype}, expected "
                             f"({self.size[1]}, {self.size[0]}, 3) uint8")
        self._gen.send(np.ascontiguousarray(rgb))
        self.frames += 1

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None


def render_episode(contract, clip, out_path: str | Path, *, seconds: float | None = None, seed: int = 0,
                   dr=None, start: str = "clip", policy=None, fps: float = 30.0, width: int = 480,
                   height: int = 360, ghost_offset_m: float = 1.0, after_fall_s: float = 1.5,
                   backend: str = "auto"):
    """Run one episode (as ``run_episode``) and write it as an MP4; returns (EpisodeResult, frames).

    After a fall the episode keeps running ``after_fall_s`` more (not counted in the metrics) so
    the video shows the fall.
    """
    from sim2sim.evaluate import make_sim, run_episode

    if not (math.isfinite(fps) and 1 <= fps <= 120):
        raise ValueError(f"fps must be in [1, 120], got {fps}")
    sim = make_sim(seed, dr)
    caption = f"{clip.name} | {contract.name}" + (f" | DR {dr} seed {seed}" if dr is not None else "")
    renderer = GhostRenderer(sim.model, clip, width, height, ghost_offset_m, backend, caption=caption)
    writer = None
    try:
        writer = Mp4Writer(out_path, width, height, fps)

        def hook(t: float, s) -> None:
            if renderer.fell_at is None and t > 0:
                renderer.fell_at = _fall_time_if_any(s, t)
            writer.write(renderer.frame(t, s))

        result = run_episode(contract, clip, seconds=seconds, seed=seed, start=start, sim=sim, policy=policy,
                             frame_hook=hook, frame_rate_hz=fps, after_fall_s=after_fall_s)
    finally:
        if writer is not None:
            writer.close()
        renderer.close()
    return result, writer.frames


def _fall_time_if_any(sim, t: float) -> float | None:
    """The fall caption appears once the fall predicate the metrics use holds."""
    from gmt_ros.core import rotations
    from sim2sim import metrics

    pos, quat = sim.root_pose()
    roll, pitch, _ = rotations.to_rpy(quat)
    return t if metrics.has_fallen(float(pos[2]), float(roll), float(pitch)) else None
