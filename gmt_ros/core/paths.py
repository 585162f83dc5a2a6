"""Where the package's data (models/, config/, launch/) lives: the source checkout or an install."""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "gmt_ros"


def share_dir() -> Path:
    """The directory holding models/, config/ and launch/.

    A source checkout (including ``pip install -e``) uses the repository root; an installed
    package (colcon, ``pip install .``) uses ``<prefix>/share/gmt_ros`` found through
    ``GMT_ROS_SHARE``, ``AMENT_PREFIX_PATH`` or the interpreter prefix.
    """
    env = os.environ.get("GMT_ROS_SHARE")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    if (repo / "package.xml").is_file() and (repo / "models").is_dir():
        return repo
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    for prefix in prefixes:
        candidate = Path(prefix) / "share" / PACKAGE
        if (candidate / "models").is_dir():
            return candidate
    raise FileNotFoundError(
        f"cannot find the {PACKAGE} share directory (models/, config/); tried {repo} and "
        f"share/{PACKAGE} under {prefixes}; set GMT_ROS_SHARE"
    )


def models_dir() -> Path:
    return share_dir() / "models"


def config_dir() -> Path:
    return share_dir() / "config"


def motions_dir() -> Path:
    return models_dir() / "motions"
