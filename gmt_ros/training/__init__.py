"""Training a student policy by DAgger in the in-process simulator (``gmt-ros distill``).

``mixture`` and ``rollouts`` need only the deployment dependencies (numpy, onnxruntime, MuJoCo):
the rollouts run the teacher and the current student through the deployment code
(``TrackingPolicy``, ``sim2sim.evaluate.run_episode``). ``model`` and ``distill`` need the
optional training extra (``pip install -r requirements-train.txt``: PyTorch CPU, onnx, onnxscript).
Nothing in ``gmt_ros.core``, ``gmt_ros.nodes`` or ``sim2sim`` imports this package.
"""
