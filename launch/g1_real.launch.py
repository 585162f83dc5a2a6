"""Drive the real G1: bridge (Unitree SDK on the robot's network), policy and motion player.

    ros2 launch gmt_ros g1_real.launch.py interface:=enp2s0 [dry_run:=false] [policy:=twist2_student]
    ros2 launch gmt_ros g1_real.launch.py interface:=enp2s0 source:=planner   # walk where /cmd_vel points
    ros2 launch gmt_ros g1_real.launch.py --show-args      # every argument, described

DRY RUN BY DEFAULT: the bridge publishes what it would command on /gmt/lowcmd_preview and never
writes rt/lowcmd until launched with dry_run:=false. DDS domain 0 (the robot's). Nothing engages
the robot by itself: a person does, with the remote or `gmt-ros operate engage` (docs/SAFETY.md:
release the built-in locomotion service, hoist the robot, keep the remote). Without a robot the
bridge waits and says so (no rt/lowstate on the interface and domain tried). A node that dies
(e.g. a wrong interface) ends the launch with an error naming it; unknown arguments are refused.
"""
from gmt_ros.launch_description import generate_graph_launch_description


def generate_launch_description():
    return generate_graph_launch_description("real")
