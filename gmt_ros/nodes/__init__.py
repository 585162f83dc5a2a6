"""Thin rclpy nodes on top of gmt_ros.core: parameters, topics, timers; the logic lives in the core."""
