"""gmt_ros: deploy a whole-body motion-tracking policy on a Unitree G1."""
import os as _os
import signal as _signal
import sys as _sys

# A node's console script that gets SIGINT while still importing (a launch stopped right after it
# started them) ends quietly instead of printing a KeyboardInterrupt traceback; each node's main
# installs its own handlers first thing.
_NODE_SCRIPTS = {"gmt-ros-bridge", "gmt-ros-policy", "gmt-ros-player", "gmt-ros-sim", "gmt-ros-recorder"}
if _sys.argv and _os.path.basename(_sys.argv[0]) in _NODE_SCRIPTS:
    _signal.signal(_signal.SIGINT, lambda *_: _os._exit(0))
