"""The student network (PyTorch) and its ONNX export. Needs the training extra.

An MLP with the observation normaliser inside the graph, so the exported ONNX takes the raw
observation vector as the policy node builds it: ``output = mlp(clip((x - mean) / std, ±clip))``.
The mean/std are fixed once from the first iteration's data (the teacher's own rollouts) and
stored as buffers: a deployment needs nothing beside the ONNX file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

OPSET = 18
STD_FLOOR = 1e-2  # a feature that barely varies in the data is not blown up by its tiny std
INPUT_CLIP = 10.0  # normalised inputs are clipped to ±INPUT_CLIP (out-of-distribution guard)


class StudentMLP(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...] = (512, 256, 128)):
        super().__init__()
        self.obs_dim, self.action_dim, self.hidden = int(obs_dim), int(action_dim), tuple(int(h) for h in hidden)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        layers: list[nn.Module] = []
        width = obs_dim
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ELU()]
            width = h
        layers.append(nn.Linear(width, action_dim))
        self.net = nn.Sequential(*layers)

    def set_normalizer(self, observations: np.ndarray) -> None:
        """Mean and std (floored at STD_FLOOR) of the observations (N, obs_dim)."""
        x = torch.as_tensor(np.asarray(observations), dtype=torch.float64)
        self.obs_mean.copy_(x.mean(0).float())
        self.obs_std.copy_(x.std(0).clamp_min(STD_FLOOR).float())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = ((obs - self.obs_mean) / self.obs_std).clamp(-INPUT_CLIP, INPUT_CLIP)
        return self.net(x)


def build(obs_dim: int, action_dim: int, hidden: tuple[int, ...], seed: int) -> StudentMLP:
    """A freshly initialised network; the same seed gives the same weights."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return StudentMLP(obs_dim, action_dim, hidden)
    finally:
        torch.random.set_rng_state(generator_state)


def export_onnx(model: StudentMLP, path: str | Path, input_name: str = "input", output_name: str = "output") -> Path:
    """Write ``model`` as ONNX (float32 ``[batch, obs_dim]`` -> ``[batch, action_dim]``), one
    self-contained file, written to a temporary name and renamed (a reader never sees half a file)."""
    import logging
    import warnings

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    model = model.eval()
    example = (torch.zeros(2, model.obs_dim),)
    batch = torch.export.Dim("batch", min=1)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), open(os.devnull, "w") as devnull:
            warnings.simplefilter("ignore")
            import contextlib

            with contextlib.redirect_stdout(devnull):
                program = torch.onnx.export(model, example, dynamo=True, input_names=[input_name],
                                            output_names=[output_name], dynamic_shapes=({0: batch},),
                                            opset_version=OPSET, external_data=False, verbose=False)
        program.save(str(tmp), external_data=False)
    finally:
        quiet.setLevel(level)
    os.replace(tmp, path)
    return path


def predict(model: StudentMLP, observations: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Model outputs (float32) for observations (N, obs_dim), without gradients."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(observations), batch):
            out.append(model(torch.as_tensor(observations[i:i + batch], dtype=torch.float32)).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.action_dim), np.float32)
