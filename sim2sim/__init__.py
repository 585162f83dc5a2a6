"""sim2sim: a MuJoCo Unitree G1 that stands in for the robot (core has no ROS import)."""
