"""Pure-Python core of gmt_ros: no ROS, MuJoCo, ``sim2sim``, Unitree SDK or MCAP import anywhere
below this package (``.importlinter`` enforces it; the SDK and MCAP formats live in
``gmt_ros.adapters``).

Every quaternion in the core is (w, x, y, z), as MuJoCo and the Unitree SDK use; clip files that
store (x, y, z, w) are converted when they are loaded.
"""
