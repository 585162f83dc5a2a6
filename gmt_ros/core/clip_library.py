"""Find motion clips by name: the shipped library (models/motions) plus extra directories.

A clip's name is its path below the directory it was found in, without the extension and with
'/' separators: models/motions/gmt/walk_stand.npz is "gmt/walk_stand". A bare "walk_stand"
also resolves when exactly one clip has that last component.
"""
from __future__ import annotations

from pathlib import Path

from gmt_ros.core import paths
from gmt_ros.core.motion import MotionClip, load_clip

CLIP_SUFFIXES = (".npz", ".pkl")


def _scan(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in CLIP_SUFFIXES and path.is_file() and not path.name.startswith("."):
            found[path.relative_to(root).with_suffix("").as_posix()] = path
    return found


def list_clips(extra_dirs=()) -> dict[str, Path]:
    """Every clip in models/motions and ``extra_dirs``, by name (sorted).

    A name found twice (two directories, or x.npz beside x.pkl) is an error naming both files,
    rather than one silently shadowing the other.
    """
    roots = [paths.motions_dir()] + [Path(d) for d in extra_dirs]
    clips: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            raise FileNotFoundError(f"motion clip directory {root} does not exist")
        for name, path in _scan(root).items():
            if name in clips and clips[name] != path:
                raise ValueError(f"two motion clips are both named {name!r}: {clips[name]} and {path}")
            clips[name] = path
    return dict(sorted(clips.items()))


def resolve_clip(name_or_path: str | Path, extra_dirs=()) -> Path:
    """A clip file from a path, a full name ("gmt/walk_stand") or a unique bare name ("walk_stand")."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    text = str(name_or_path)
    if candidate.suffix.lower() in CLIP_SUFFIXES:
        raise FileNotFoundError(f"motion clip file {text} does not exist")
    clips = list_clips(extra_dirs)
    if text in clips:
        return clips[text]
    matches = [n for n in clips if n.endswith("/" + text)]
    if len(matches) == 1:
        return clips[matches[0]]
    if matches:
        raise ValueError(f"motion clip name {text!r} is ambiguous: it matches {', '.join(matches)}")
    raise ValueError(f"no motion clip named {text!r}; available: {', '.join(clips) or '(none)'}")


def load_named_clip(name_or_path: str | Path, extra_dirs=()) -> MotionClip:
    """``load_clip(resolve_clip(...))``."""
    return load_clip(resolve_clip(name_or_path, extra_dirs))
