"""`gmt-ros` subcommands that are more than a few lines: each module has ``register(subparsers)``
adding its parser with ``set_defaults(func=...)``; ``gmt_ros.cli`` lists the modules.

Tools never import ``gmt_ros.cli`` (it imports them): what they share with it is here."""


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2 (tools raise it too)."""


def add_send_path_argument(parser) -> None:
    """``--send-path`` of ``gmt-ros eval`` and ``evaluate`` (``sim2sim.evaluate.SEND_PATHS``)."""
    parser.add_argument("--send-path", choices=("bridge", "range", "raw"), default="bridge",
                        help="bridge: through the bridge's supervisor (limits with the stop band, fall check; "
                             "default, as on the robot); range: the same with the joint-range clip of earlier "
                             "versions; raw: the policy's targets straight to the motors, no supervisor")
