"""`gmt-ros` subcommands that are more than a few lines: each module has ``register(subparsers)``
adding its parser with ``set_defaults(func=...)``; ``gmt_ros.cli`` lists the modules.

Tools never import ``gmt_ros.cli`` (it imports them): what they share with it is here."""


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2 (tools raise it too)."""
