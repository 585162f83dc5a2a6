"""Two CycloneDDS libraries in one process (the RMW's beside the Unitree SDK's) are refused at start,
saying what to do."""
import glob
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gmt_ros.adapters import dds

BIN = Path(sys.executable).parent


def test_the_sdk_alone_maps_one_cyclonedds():
    import unitree_sdk2py.core.channel  # noqa: F401 (loads the binding's libddsc)

    libs = dds.loaded_cyclonedds_libraries()
    assert len(libs) == 1 and "libddsc.so" in libs[0], libs
    dds.check_single_cyclonedds()


def test_a_second_libddsc_is_refused_naming_both(tmp_path):
    """A copy of the library under another path, loaded next to the SDK's (as an RMW's
    /opt/ros/<distro>/lib/libddsc.so.0 would be), in a fresh process."""
    source = sorted(glob.glob("/usr/lib/*/libddsc.so.0*"))
    if not source:
        pytest.skip("no Debian libddsc to copy")
    other = tmp_path / "opt_ros_lib" / "libddsc.so.0"
    other.parent.mkdir()
    shutil.copy(source[0], other)
    code = textwrap.dedent(f"""
        import ctypes, sys
        import unitree_sdk2py.core.channel
        ctypes.CDLL({str(other)!r}, mode=ctypes.RTLD_LOCAL)
        from gmt_ros.adapters import dds
        try:
            dds.check_single_cyclonedds()
        except RuntimeError as exc:
            print(exc); sys.exit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "2 CycloneDDS libraries are loaded in this process" in proc.stdout and str(other) in proc.stdout
    assert "RMW_IMPLEMENTATION=rmw_fastrtps_cpp" in proc.stdout and "one library serves both" in proc.stdout


def test_maps_parsing():
    maps = ("7f00-7f01 r-xp 00000000 08:01 1 /opt/ros/jazzy/lib/libddsc.so.0.10.5\n"
            "7f02-7f03 r-xp 00000000 08:01 2 /venv/cdds/lib/libddsc.so.0.10.2\n"
            "7f04-7f05 r--p 00000000 08:01 2 /venv/cdds/lib/libddsc.so.0.10.2\n"
            "7f06-7f07 rw-p 00000000 00:00 0 \n")
    assert dds.loaded_cyclonedds_libraries(maps) == ["/opt/ros/jazzy/lib/libddsc.so.0.10.5", "/venv/cdds/lib/libddsc.so.0.10.2"]
    with pytest.raises(RuntimeError, match="2 CycloneDDS libraries"):
        dds.check_single_cyclonedds(maps)


def test_the_bridge_refuses_rmw_cyclonedds_before_loading_it():
    env = dict(os.environ, RMW_IMPLEMENTATION="rmw_cyclonedds_cpp")
    proc = subprocess.run([str(BIN / "gmt-ros-bridge")], capture_output=True, text=True, env=env, timeout=60, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "cannot start" in out and "'rmw_cyclonedds_cpp'" in out and "RMW_IMPLEMENTATION=rmw_fastrtps_cpp" in out
    assert "Traceback" not in out
