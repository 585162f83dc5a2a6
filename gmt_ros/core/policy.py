"""A tracking policy: contract + observation builder + ONNX network + action→PD mapping.

``TrackingPolicy.step(state, window, now)`` returns a ``JointCommand`` for all 29 motors: policy
joints get ``default + action_scale * clip(action, ±action_clip)`` with the contract's kp/kd, held
joints (e.g. the wrists under a 23-joint policy) get their hold target and gains. Bad input raises
ValueError and leaves the policy's state (history, last action) as it was; no command is ever built
from NaN. Output safety (joint limits, torque consistency) belongs to the send path, not here.

Input checks per step: the state (new every step) is validated; a window is validated the first
time it is used (a window serves several ticks; windows are not modified once handed over: the
codec and the clip sampler build new ones); the observation vector is checked for NaN/inf every
step, so no value that escaped a check reaches the network.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort

from gmt_ros.core.command import JointCommand
from gmt_ros.core.contract import PolicyContract, check_against_onnx, load_contract
from gmt_ros.core.frames import MotionWindow
from gmt_ros.core.observation import ObservationBuilder, slot_index
from gmt_ros.core.state import RobotState


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file (the contract's onnx_sha256)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class OnnxPolicy:
    """The policy network: one CPU onnxruntime session, one thread (predictable latency next to
    the other control-loop work), checked against the contract when it is created.

    Session options measured on the shipped TWIST2 student (2-core VM, ≈ 0.22 ms per call): full
    graph optimisation (onnxruntime's default, fuses LayerNorm/GELU) and sequential execution on
    one intra-op thread; a thread pool only adds wake-up jitter for a batch of one. IOBinding and
    OrtValue inputs were slower than ``run`` with a preallocated float32 feed, so the feed buffer
    and the input mapping are built once and reused.
    """

    def __init__(self, contract: PolicyContract, onnx_path: str | Path | None = None):
        self.contract = contract
        self.path = Path(onnx_path) if onnx_path is not None else contract.onnx_path
        if not self.path.is_file():
            raise FileNotFoundError(f"policy {contract.name!r}: ONNX file {self.path} not found")
        if onnx_path is None and contract.onnx_sha256 is not None:
            digest = file_sha256(self.path)
            if digest != contract.onnx_sha256:
                raise ValueError(f"policy {contract.name!r}: {self.path.name} has sha256 {digest}, "
                                 f"the contract expects {contract.onnx_sha256}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=["CPUExecutionProvider"])
        check_against_onnx(contract, self.session, self.path.name)
        self._feed = np.zeros((1, contract.obs_dim), dtype=np.float32)
        self._inputs = {contract.input_name: self._feed}
        self._outputs = [contract.output_name]

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """Raw actions (float64, action_dim) for one observation vector."""
        observation = np.asarray(observation)
        if observation.shape != (self.contract.obs_dim,):
            raise ValueError(f"observation has shape {observation.shape}, expected ({self.contract.obs_dim},)")
        self._feed[0] = observation
        (out,) = self.session.run(self._outputs, self._inputs)
        return out.astype(np.float64).reshape(-1)


class TrackingPolicy:
    """Runs one contract's policy at its control rate; see the module docstring."""

    def __init__(self, contract: PolicyContract | str | Path, onnx_path: str | Path | None = None):
        self.contract = contract if isinstance(contract, PolicyContract) else load_contract(contract)
        c = self.contract
        self.network = OnnxPolicy(c, onnx_path)
        self.observations = ObservationBuilder(c)
        self.table = c.command_table  # default pose and gains of every slot, held joints included
        self._slot_index = slot_index(self.table.policy_slots)  # a slice for the 29-joint policy
        self._last_action = np.zeros(c.action_dim)
        self._last_observation: np.ndarray | None = None
        self._pending_observation: np.ndarray | None = None  # built by observe(), not yet acted on
        self._checked_window: MotionWindow | None = None  # the last window that passed validate()

    @property
    def last_action(self) -> np.ndarray:
        """Raw network output of the last successful step (zeros after reset)."""
        return self._last_action.copy()

    @property
    def last_observation(self) -> np.ndarray | None:
        return None if self._last_observation is None else self._last_observation.copy()

    def reset(self, state: RobotState | None = None) -> None:
        """Start a new episode: history and last action to zero, as both authors' deployment code
        does. ``state`` is only validated (a bad first state fails here, not on the first step)."""
        if state is not None:
            state.validate()
        self.observations.reset()
        self._last_action = np.zeros(self.contract.action_dim)
        self._last_observation = None
        self._pending_observation = None

    def action_to_command(self, action: np.ndarray) -> JointCommand:
        """29-slot PD command for raw policy actions (clipped and scaled here)."""
        action = np.asarray(action, dtype=np.float64)
        c = self.contract
        if action.shape != (c.action_dim,):
            raise ValueError(f"policy {c.name!r}: action has shape {action.shape}, expected ({c.action_dim},)")
        if not np.isfinite(action).all():
            bad = np.flatnonzero(~np.isfinite(action))
            raise ValueError(f"policy {c.name!r}: non-finite action for {[c.joint_names[i] for i in bad]}")
        q = self.table.default_pose.copy()
        # min/max is np.clip for finite values, at a fraction of np.clip's call overhead
        q[self._slot_index] += c.action_scale * np.minimum(np.maximum(action, -c.action_clip), c.action_clip)
        # No JointCommand.validate(): every part is already known good (a finite action, clipped;
        # default pose and gains validated with the contract), and the send path validates again.
        return self.table.command(q)

    def observe(self, state: RobotState, window: MotionWindow, now: float) -> np.ndarray:
        """This step's observation vector (checked finite); the history is not advanced until
        :meth:`act`. ``step`` is ``act(network(observe(...)))``; a caller that decides the action
        itself (the DAgger mixture of ``gmt_ros.training``) uses the two halves."""
        c = self.contract
        if not isinstance(state, RobotState):
            raise ValueError(f"state must be a RobotState, got {type(state).__name__}")
        if not isinstance(window, MotionWindow):
            raise ValueError(f"window must be a MotionWindow, got {type(window).__name__}")
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite time, got {now}")
        state.validate()
        if window is not self._checked_window:  # a window stays in use for several ticks: check it once
            window.validate()
            self._checked_window = window
        obs = self.observations.build(state, window, float(now), self._last_action)
        if not np.isfinite(obs).all():
            bad = np.flatnonzero(~np.isfinite(obs))
            raise ValueError(f"policy {c.name!r}: non-finite observation at {self.observations.describe(int(bad[0]))}")
        self._pending_observation = obs
        return obs

    def act(self, action: np.ndarray) -> JointCommand:
        """Send ``action`` (raw, action_dim) for the observation :meth:`observe` just built: the
        command, and the history and last action advanced. A bad action raises and changes nothing."""
        if self._pending_observation is None:
            raise RuntimeError(f"policy {self.contract.name!r}: act() without observe()")
        command = self.action_to_command(action)  # raises on NaN/inf before any state changes
        self.observations.commit()
        self._last_action = np.array(action, dtype=np.float64)
        self._last_observation, self._pending_observation = self._pending_observation, None
        return command

    def step(self, state: RobotState, window: MotionWindow, now: float) -> JointCommand:
        """One control step: observe, run the network, map the action to a command."""
        return self.act(self.network(self.observe(state, window, now)))
