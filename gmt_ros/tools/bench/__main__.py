"""``python -m gmt_ros.tools.bench probe NODE RECORD_FILE NODE_ARGS...``: a node with its recording layer."""
import sys

from gmt_ros.tools.bench.probes import probe_main

sys.exit(probe_main(sys.argv[1:]))
