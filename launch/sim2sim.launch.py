"""Rehearse on the simulated G1: sim (robot stand-in on unitree DDS, loopback), bridge, policy, player,
and an operator that brings the robot up.

    ros2 launch gmt_ros sim2sim.launch.py [clip:=gmt/walk_stand] [dr:=gmt] [seed:=3] [policy:=twist2_student]
        [exit_when_done:=true] [report:=out/launch.json] [engage:=false] [dds_domain:=1]
    ros2 launch gmt_ros sim2sim.launch.py source:=planner   # drive it with geometry_msgs/Twist on /cmd_vel
    ros2 launch gmt_ros sim2sim.launch.py --show-args      # every argument, described

The robot hangs on a gantry in zero torque until the operator (`gmt-ros operate bringup`) has
walked the supervisor to policy (zero torque -> damping -> ramp -> hold -> policy, each step
confirmed); only then is the gantry released, so it cannot race the ramp. `clip:=NAME` plays a
clip once the robot stands; `exit_when_done:=true` ends the launch after it (exit 0 when it played
to its end with no fault). With `engage:=false` the robot stays on the gantry until you run
`gmt-ros operate engage --release-gantry` (or press the scripted remote). Any node that dies ends
the launch with an error naming it. Unknown arguments are refused. The same graph runs without a
ROS install: `gmt-ros sim2sim --motion NAME` (or `gmt-ros launch sim2sim.launch.py ...` where the
vendored `launch` is installed).
"""
from gmt_ros.launch_description import generate_graph_launch_description


def generate_launch_description():
    return generate_graph_launch_description("sim2sim")
