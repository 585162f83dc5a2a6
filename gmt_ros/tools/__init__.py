"""`gmt-ros` subcommands that are more than a few lines: each module has ``register(subparsers)``
adding its parser with ``set_defaults(func=...)``; ``gmt_ros.cli`` lists the modules."""
