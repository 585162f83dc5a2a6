"""Test-wide environment: DDS stays on loopback in a test-only domain."""
import os

# Set before any rclpy / unitree_sdk2py import in the test process and inherited by children.
os.environ.setdefault("ROS_DOMAIN_ID", "87")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("GMT_ROS_DDS_DOMAIN", "7")
os.environ.setdefault("GMT_ROS_DDS_INTERFACE", "lo")


# Shared by the offline-loop test modules (module scope: each module builds them once).
import pytest


@pytest.fixture(scope="module")
def contract():
    from gmt_ros.core.contract import load_contract

    return load_contract("twist2_student")


@pytest.fixture(scope="module")
def policy(contract):
    from gmt_ros.core.policy import TrackingPolicy

    return TrackingPolicy(contract)


@pytest.fixture(scope="module")
def squat():
    from gmt_ros.core.clip_library import load_named_clip

    return load_named_clip("gmt/squat")
