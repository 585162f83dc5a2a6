"""gmt_ros: deploy a whole-body motion-tracking policy on a Unitree G1."""
