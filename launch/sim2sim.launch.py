"""Rehearse on the simulated G1: sim (robot stand-in on unitree DDS, loopback), bridge, policy, player.

    ros2 launch gmt_ros sim2sim.launch.py [policy:=twist2_student] [dds_domain:=1] [interface:=lo]

The robot starts on a gantry in zero torque; press Start, Start, then A on the (scripted) remote,
or call the /gmt/supervisor/* services; play clips with `ros2 topic pub /gmt/player/command ...`.
The same graph runs without ROS installed: `gmt-ros sim2sim --motion NAME`.
"""
from gmt_ros.launch_description import generate_graph_launch_description


def generate_launch_description():
    return generate_graph_launch_description("sim2sim")
