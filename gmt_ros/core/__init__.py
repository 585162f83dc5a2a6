"""Pure-Python core of gmt_ros: no ROS import anywhere below this package.

Every quaternion in the core is (w, x, y, z), as MuJoCo and the Unitree SDK use; clip files that
store (x, y, z, w) are converted when they are loaded.
"""
