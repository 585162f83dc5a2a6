"""What every gmt_ros node shares: its parameters declared and read from its PARAMETERS table
(``self.params``; gmt_ros.nodes.parameters), and the polled subscriptions of a reader node created
on first use and destroyed with it (``polled_topics``; gmt_ros.nodes.polled_topics)."""
from __future__ import annotations

from rclpy.node import Node

from gmt_ros.nodes.parameters import ParameterTable, read_parameters
from gmt_ros.nodes.polled_topics import PolledTopics


class GmtNode(Node):
    _readers: PolledTopics | None = None  # also when __init__ failed before creating it

    def __init__(self, name: str, parameters: ParameterTable, error: type[Exception], **kwargs):
        """``error``: the node's configuration error, raised naming a parameter of the wrong type."""
        super().__init__(name, **kwargs)
        self.params = read_parameters(self, parameters, error)

    def polled_topics(self, reader_name: str) -> PolledTopics:
        if self._readers is None:
            self._readers = PolledTopics(reader_name, context=self.context)
        return self._readers

    def destroy_node(self) -> None:
        if self._readers is not None:
            self._readers.destroy()
            self._readers = None
        super().destroy_node()
