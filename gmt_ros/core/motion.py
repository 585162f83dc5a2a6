"""Reference motion clips as files: load (checked, glitches repaired by ``motion_repair``), save in
the project format, convert. The clip in memory is ``motion_clip.MotionClip``; this module
re-exports it, ``window_from_clip`` and ``MotionRepairWarning`` for its users.

Formats read by ``load_clip``:

* ``.pkl`` - the GMT / TWIST2 clip dict: ``fps``, ``root_pos`` (T,3), ``root_rot`` (T,4) quaternion
  **x, y, z, w**, ``dof_pos`` (T,23) in GMT order (``g1.GMT23_NAMES``) or (T,29) in motor-slot
  order; ``local_body_pos`` / ``link_body_list`` are ignored. Read with the restricted unpickler
  of ``safe_pickle`` (a clip cannot run code). Quaternions are reordered to w, x, y, z and kept
  as stored (GMT's have |q| 0.947-0.997; ``root_quat`` is their unit-length copy); 23-joint clips
  get zero wrists, masked out.
* ``.npz`` - the project format written by ``save_clip`` (schema 2, read with
  ``allow_pickle=False``): schema_version, name, fps, root_pos, root_quat_wxyz (as stored),
  joint_pos (T,29), joint_mask (29,), joint_names (the 29 slot names, checked), source, notes.
  Arrays are float32 (GMT's pickles are float32: their values come through bit for bit). Schema 1
  files (quaternions normalised when converted) are still read.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.motion_clip import MotionClip, check_fps, check_quat_norms, numeric_array, window_from_clip
from gmt_ros.core.motion_repair import MotionRepairWarning, repair_glitches
from gmt_ros.core.safe_pickle import load_pickled_dict

__all__ = ["READABLE_SCHEMAS", "SCHEMA_VERSION", "MotionClip", "MotionRepairWarning", "clip_summary", "convert_clip",
           "convert_main", "load_clip", "save_clip", "window_from_clip"]

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # 1: quaternions normalised at conversion; 2: as stored

_PICKLE_REQUIRED = ("fps", "root_pos", "root_rot", "dof_pos")
_PICKLE_IGNORED = ("local_body_pos", "link_body_list")
_NPZ_KEYS = ("schema_version", "name", "fps", "root_pos", "root_quat_wxyz", "joint_pos",
             "joint_mask", "joint_names", "source", "notes")


def _clip_from_arrays(name, fps, root_pos, root_quat, joint_pos, mask, source, notes) -> MotionClip:
    root_pos, root_quat, joint_pos, repairs = repair_glitches(name, fps, root_pos, root_quat, joint_pos)
    return MotionClip(name=name, fps=fps, root_pos=root_pos, root_quat=root_quat, joint_pos=joint_pos,
                      joint_mask=mask, source=source, notes=list(notes) + repairs)


def _load_pickle_clip(path: Path, name: str) -> MotionClip:
    what = f"clip {name!r} ({path})"
    data = load_pickled_dict(path, what)
    missing = [k for k in _PICKLE_REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{what}: missing keys {missing}; a GMT/TWIST2 clip needs {list(_PICKLE_REQUIRED)}, "
                         f"this one has {sorted(data)}")
    fps = check_fps(data["fps"], what)
    root_pos = numeric_array(data["root_pos"], "root_pos", what, width=3)
    n = root_pos.shape[0]
    if n < 2:
        raise ValueError(f"{what}: needs at least 2 frames, got {n}")
    root_rot = numeric_array(data["root_rot"], "root_rot", what, width=4, frames=n)
    check_quat_norms(root_rot, "root_rot", what)
    dof = numeric_array(data["dof_pos"], "dof_pos", what, frames=n)
    count = dof.shape[1]
    if count == len(g1.GMT23_NAMES):
        joint_pos = g1.expand_to_29(dof, g1.GMT23_NAMES)
        mask = np.zeros(g1.NUM_BODY_JOINTS, dtype=bool)
        mask[list(g1.GMT23_SLOTS)] = True
    elif count == g1.NUM_BODY_JOINTS:
        joint_pos = dof
        mask = np.ones(g1.NUM_BODY_JOINTS, dtype=bool)
    else:
        raise ValueError(f"{what}: dof_pos has {count} joints; expected 23 (GMT order) or 29 (G1 motor order)")
    notes = []
    ignored = sorted(set(data) - set(_PICKLE_REQUIRED) - set(_PICKLE_IGNORED))
    if ignored:
        notes.append(f"ignored unknown keys {ignored}")
    return _clip_from_arrays(name, fps, root_pos, rotations.xyzw_to_wxyz(root_rot), joint_pos, mask, str(path), notes)


def _npz_text(arr: np.ndarray, key: str, what: str) -> str:
    if arr.shape != () or arr.dtype.kind != "U":
        raise ValueError(f"{what}: {key} must be a text scalar, got {arr.dtype} {arr.shape}")
    return str(arr)


def _load_npz_clip(path: Path) -> MotionClip:
    what = f"clip file {path}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{what}: not a readable project .npz clip: {exc}") from None
    missing = [k for k in _NPZ_KEYS if k not in data]
    if missing:
        raise ValueError(f"{what}: missing keys {missing} (has {sorted(data)})")
    unknown = sorted(set(data) - set(_NPZ_KEYS))
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}; schema {SCHEMA_VERSION} has {list(_NPZ_KEYS)}")
    version = data["schema_version"]
    if version.shape != () or version.dtype.kind not in "iu" or int(version) not in READABLE_SCHEMAS:
        raise ValueError(f"{what}: unsupported schema_version {version!r}; this gmt_ros reads "
                         f"{', '.join(map(str, READABLE_SCHEMAS))}")
    names = data["joint_names"]
    if names.dtype.kind != "U" or tuple(names.tolist()) != g1.JOINT_NAMES:
        got = names.tolist() if names.dtype.kind == "U" else repr(names)
        if isinstance(got, list) and len(got) == g1.NUM_BODY_JOINTS:
            k = next(i for i, (a, b) in enumerate(zip(got, g1.JOINT_NAMES)) if a != b)
            detail = f"slot {k} is {got[k]!r}, expected {g1.JOINT_NAMES[k]!r}"
        else:
            detail = f"got {got if not isinstance(got, list) else len(got)} names, expected the 29 G1 slot names"
        raise ValueError(f"{what}: joint_names are not the G1 motor-slot order ({detail})")
    name = _npz_text(data["name"], "name", what)
    source = _npz_text(data["source"], "source", what)
    notes = data["notes"]
    if notes.ndim != 1 or (notes.size and notes.dtype.kind != "U"):
        raise ValueError(f"{what}: notes must be a 1-D text array")
    mask = data["joint_mask"]
    if mask.dtype != bool:
        raise ValueError(f"{what}: joint_mask must be bool, got {mask.dtype}")
    what = f"clip {name!r} ({path})"
    fps = check_fps(data["fps"], what)
    root_pos = numeric_array(data["root_pos"], "root_pos", what, width=3)
    n = root_pos.shape[0]
    quat = numeric_array(data["root_quat_wxyz"], "root_quat_wxyz", what, width=4, frames=n)
    if int(version) == 1:  # schema 1 stored unit quaternions
        norms = np.linalg.norm(quat, axis=1)
        if np.any(np.abs(norms - 1.0) > 1e-3):
            raise ValueError(f"{what}: root_quat_wxyz must be unit length in schema 1, "
                             f"|q| in [{norms.min():.4f}, {norms.max():.4f}]")
    else:
        check_quat_norms(quat, "root_quat_wxyz", what)
    joint_pos = numeric_array(data["joint_pos"], "joint_pos", what, width=g1.NUM_BODY_JOINTS, frames=n)
    if n < 2:
        raise ValueError(f"{what}: needs at least 2 frames, got {n}")
    return _clip_from_arrays(name, fps, root_pos, quat, joint_pos, mask, source,
                             [str(s) for s in notes.tolist()])


def load_clip(path: str | Path) -> MotionClip:
    """Load a .pkl (GMT/TWIST2) or .npz (project) clip; validated, repaired (see module doc)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"motion clip {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return _load_pickle_clip(path, path.stem)
    if suffix == ".npz":
        return _load_npz_clip(path)
    raise ValueError(f"motion clip {path}: unsupported format {path.suffix!r} (expected .pkl or .npz)")


# ----------------------------------------------------------------------------- saving

def _npz_arrays(clip: MotionClip) -> dict[str, np.ndarray]:
    return {
        "schema_version": np.array(SCHEMA_VERSION, dtype=np.int32),
        "name": np.array(clip.name),
        "fps": np.array(clip.fps, dtype=np.float64),
        "root_pos": clip.root_pos.astype(np.float32),
        "root_quat_wxyz": clip.root_quat_stored.astype(np.float32),
        "joint_pos": clip.joint_pos.astype(np.float32),
        "joint_mask": clip.joint_mask.copy(),
        "joint_names": np.array(g1.JOINT_NAMES),
        "source": np.array(clip.source),
        "notes": np.array(clip.notes, dtype=str) if clip.notes else np.zeros(0, dtype="<U1"),
    }


def save_clip(clip: MotionClip, path: str | Path) -> Path:
    """Write the project .npz (schema 2). Byte-identical for identical clips (fixed zip
    timestamps), written to a temporary file and renamed so readers never see half a file."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"save_clip: {path} must end in .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key, arr in _npz_arrays(clip).items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def convert_clip(in_path: str | Path, out_path: str | Path, source: str | None = None) -> MotionClip:
    """Load any supported clip and save it as project .npz; ``source`` overrides the recorded origin."""
    clip = load_clip(in_path)
    if source is not None:
        clip = MotionClip(name=clip.name, fps=clip.fps, root_pos=clip.root_pos, root_quat=clip.root_quat_stored,
                          joint_pos=clip.joint_pos, joint_mask=clip.joint_mask, source=source, notes=clip.notes)
    save_clip(clip, out_path)
    return clip


def clip_summary(clip: MotionClip) -> str:
    joints = f"{clip.num_joints} joints" + (" (wrists zero)" if clip.num_joints < g1.NUM_BODY_JOINTS else "")
    repairs = "; ".join(clip.notes) if clip.notes else "none"
    return (f"{clip.name}: {clip.num_frames} frames at {clip.fps:.2f} fps, {clip.duration:.2f} s, "
            f"{joints}; repairs: {repairs}")


def convert_main(argv: list[str]) -> int:
    """``gmt-ros convert IN OUT``: convert a clip to the project format and print a summary."""
    parser = argparse.ArgumentParser(prog="gmt-ros convert",
                                     description="Convert a GMT/TWIST2 .pkl (or project .npz) clip to project .npz.")
    parser.add_argument("input", help="clip to read (.pkl or .npz)")
    parser.add_argument("output", help="project clip to write (.npz)")
    parser.add_argument("--source", help="origin to record in the file (default: the input path)")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():  # the summary line reports the repairs
            warnings.simplefilter("ignore", MotionRepairWarning)
            clip = convert_clip(args.input, args.output, source=args.source)
    except (ValueError, OSError) as exc:
        print(f"gmt-ros convert: error: {exc}", file=sys.stderr)
        return 1
    print(f"{clip_summary(clip)} -> {args.output}")
    return 0
