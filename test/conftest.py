"""Test-wide environment: DDS stays on loopback in a test-only domain."""
import os

# Set before any rclpy / unitree_sdk2py import in the test process and inherited by children.
os.environ.setdefault("ROS_DOMAIN_ID", "87")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("GMT_ROS_DDS_DOMAIN", "7")
os.environ.setdefault("GMT_ROS_DDS_INTERFACE", "lo")
