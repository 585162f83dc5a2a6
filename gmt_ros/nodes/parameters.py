"""Node parameters declared and read from one table per node, the same way in every node.

Each node keeps ``PARAMETERS = {name: (default, type, description)}``; ``read_parameters``
declares them (with their descriptions, so ``ros2 param describe`` shows them), reads the values
given by a params file or ``-p``, and raises the node's configuration error naming a parameter of
the wrong type. An int given for a float parameter is taken as that float; an empty list default
declares a string array (an empty list has no type of its own).
"""
from __future__ import annotations

import math

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

ParameterTable = dict[str, tuple[object, type, str]]


def read_parameters(node: Node, table: ParameterTable, error: type[Exception]) -> dict:
    values: dict = {}
    for name, (default, kind, text) in table.items():
        if kind is list and default == []:
            node.declare_parameter(name, Parameter.Type.STRING_ARRAY, ParameterDescriptor(description=text))
            try:
                values[name] = list(node.get_parameter(name).value)
            except ParameterUninitializedException:
                values[name] = []
            continue
        node.declare_parameter(name, default, ParameterDescriptor(description=text, dynamic_typing=True))
        raw = node.get_parameter(name).value
        if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
            raw = float(raw)
        if kind is list and isinstance(raw, (list, tuple)) and all(isinstance(x, str) for x in raw):
            raw = list(raw)
        if type(raw) is not kind:
            raise error(f"parameter {name} must be a {kind.__name__}, got {raw!r}")
        values[name] = raw
    return values


def require_positive(values: dict, names, error: type[Exception]) -> None:
    """Raise ``error`` naming the first of ``names`` whose value is not a finite number > 0."""
    for name in names:
        if not (math.isfinite(values[name]) and values[name] > 0):
            raise error(f"parameter {name} must be positive, got {values[name]}")
