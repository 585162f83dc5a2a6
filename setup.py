"""ament_python package: builds with colcon on a ROS 2 host and installs with pip in a venv."""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "gmt_ros"


def data_tree(dest_root, src_root):
    """(install dir, [files]) pairs for every directory below src_root, keeping its layout."""
    out = []
    for dirpath, _dirs, files in os.walk(src_root):
        paths = [os.path.join(dirpath, f) for f in files if not f.startswith(".")]
        if paths:
            out.append((os.path.join(dest_root, dirpath), paths))
    return out


def pinned(path):
    """The requirement lines of a requirements file (comments dropped)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, path)) as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    return [line for line in lines if line]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["gmt_ros", "gmt_ros.*", "sim2sim", "sim2sim.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml") + glob("config/*.xml")),
    ]
    + data_tree("share/" + PACKAGE, "models"),
    install_requires=["setuptools"],
    # gmt-ros distill: pip install -e .[train] (scripts/setup.sh installs requirements-train.txt)
    extras_require={"train": pinned("requirements-train.txt")},
    zip_safe=True,
    maintainer="gmt_ros developers",
    maintainer_email="gmt-ros@example.org",
    description="Whole-body motion-tracking policy deployment for the Unitree G1",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "gmt-ros = gmt_ros.cli:main",
            "gmt-ros-bridge = gmt_ros.nodes.bridge_node:main",
            "gmt-ros-policy = gmt_ros.nodes.policy_node:main",
            "gmt-ros-player = gmt_ros.nodes.motion_player_node:main",
            "gmt-ros-stream = gmt_ros.nodes.stream_node:main",
            "gmt-ros-planner = gmt_ros.nodes.planner_node:main",
            "gmt-ros-sim = sim2sim.node:main",
            "gmt-ros-recorder = gmt_ros.nodes.recorder_node:main",
        ],
    },
)
