"""Adapters between the pure core and third-party wire formats, kept out of ``gmt_ros.core``:

- ``lowlevel``: the Unitree G1 low-level messages (unitree_sdk2py / CycloneDDS IDL types): packing
  a core ``JointCommand`` into LowCmd_, unpacking LowState_ into a core ``RobotState``;
  ``lowlevel_codec``: their wire layouts, CRC and fast message types;
- ``dds``: the Unitree SDK's DDS participant (interface, domain, link diagnostics);
- ``mcap_io``: MCAP recordings of ROS 2 topics (mcap, mcap-ros2-support).

They import the core, never the other way round (``.importlinter``).
"""
