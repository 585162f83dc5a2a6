"""sim2sim: a MuJoCo Unitree G1 that stands in for the robot (core has no ROS import)."""
import gmt_ros  # noqa: F401  (first: gmt-ros-sim's quiet SIGINT while importing, see gmt_ros/__init__.py)
