"""The package builds with colcon (as on a ROS 2 host) and the installed console scripts run from
the install space, finding their data (config, launch, models) under share/gmt_ros."""
import os
import subprocess
import sys

import pytest
from conftest import installed_env


def test_share_space_holds_launch_config_models_and_ament_marker(install_space):
    share = install_space / "share" / "gmt_ros"
    for rel in ("package.xml", "launch/sim2sim.launch.py", "launch/g1_real.launch.py", "config/bridge.yaml",
                "config/sim2sim.yaml", "models/twist2_student/twist2_student.onnx",
                "models/twist2_student/contract.yaml", "models/twist2_student/LICENSE",
                "models/motions/gmt/walk_stand.npz", "models/motions/PROVENANCE.md"):
        assert (share / rel).is_file(), rel
    assert (install_space / "share" / "ament_index" / "resource_index" / "packages" / "gmt_ros").is_file()


@pytest.mark.parametrize("script", ["gmt-ros", "gmt-ros-bridge", "gmt-ros-policy", "gmt-ros-player", "gmt-ros-stream", "gmt-ros-sim"])
def test_node_executables_installed_where_ros2_run_looks(install_space, script):
    exe = install_space / "lib" / "gmt_ros" / script
    assert exe.is_file() and os.access(exe, os.X_OK)


def test_installed_cli_runs_from_the_install_space_and_finds_its_data(install_space):
    env = installed_env(install_space)
    exe = install_space / "lib" / "gmt_ros" / "gmt-ros"
    where = subprocess.run([sys.executable, "-c", "import gmt_ros, gmt_ros.core.paths as p; print(gmt_ros.__file__); print(p.share_dir())"],
                           env=env, cwd=install_space, capture_output=True, text=True, check=True).stdout.split()
    assert str(install_space) in where[0], "the installed package, not the checkout, must be imported"
    assert where[1] == str(install_space / "share" / "gmt_ros")
    proc = subprocess.run([str(exe), "clips"], check=False, env=env, cwd=install_space, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "gmt/walk_stand" in proc.stdout and str(install_space) in proc.stdout
