"""Forward kinematics of a reference motion on the G1 model (for the E_mpkpe tracking metric).

E_mpkpe compares where the robot's key bodies are with where the reference motion puts them; the
reference side comes from here: the reference root pose and joint angles are written into a
private MjData and ``mj_kinematics`` gives the body frames. No dynamics, no contacts.
"""
from __future__ import annotations

import mujoco
import numpy as np

from gmt_ros.core import g1
from sim2sim.g1_model import body_ids, build_g1_model, g1_index

# Key bodies for E_mpkpe: the body frames at the hips, knees, ankles, shoulders, elbows and wrist
# ends on both sides, plus the torso. Together they span every limb segment the 29 joints move
# (the wrist-yaw frame sits behind all three wrist joints, so 23-joint policies holding the wrists
# at 0 are still scored on their elbows' and shoulders' effect on the hands).
KEY_BODIES: tuple[str, ...] = (
    "torso_link",
    "left_hip_roll_link",
    "left_knee_link",
    "left_ankle_roll_link",
    "right_hip_roll_link",
    "right_knee_link",
    "right_ankle_roll_link",
    "left_shoulder_roll_link",
    "left_elbow_link",
    "left_wrist_yaw_link",
    "right_shoulder_roll_link",
    "right_elbow_link",
    "right_wrist_yaw_link",
)

_QUAT_NORM_TOL = 1e-3  # the tolerance MotionFrames.validate uses for clip quaternions


class ReferenceKinematics:
    """World positions of named bodies for reference frames (root pose + 29 joint angles)."""

    def __init__(self, model: mujoco.MjModel | None = None, body_names=KEY_BODIES):
        self.model = build_g1_model() if model is None else model
        self.data = mujoco.MjData(self.model)
        self.body_names = tuple(body_names)
        self._body_ids = body_ids(self.model, self.body_names)  # ValueError naming a missing body
        idx = g1_index(self.model)
        self._root = idx.root_qpos
        self._jq = idx.joint_qpos

    def body_positions(self, root_pos, root_quat, joint_pos) -> np.ndarray:
        """Positions (..., len(body_names), 3) in the world frame.

        root_pos (..., 3) m; root_quat (..., 4) w, x, y, z world←pelvis, unit length;
        joint_pos (..., 29) rad in motor-slot order. Leading axes (frames) must agree.
        """
        root_pos = np.asarray(root_pos, dtype=np.float64)
        root_quat = np.asarray(root_quat, dtype=np.float64)
        joint_pos = np.asarray(joint_pos, dtype=np.float64)
        lead = root_pos.shape[:-1]
        for name, arr, width in (("root_pos", root_pos, 3), ("root_quat", root_quat, 4),
                                 ("joint_pos", joint_pos, g1.NUM_BODY_JOINTS)):
            if arr.ndim < 1 or arr.shape[-1] != width or arr.shape[:-1] != lead:
                raise ValueError(f"{name} has shape {arr.shape}, expected {lead + (width,)}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} contains NaN or inf")
        norms = np.linalg.norm(root_quat, axis=-1)
        if np.any(np.abs(norms - 1.0) > _QUAT_NORM_TOL):
            raise ValueError(f"root_quat is not unit length (|q| in [{norms.min():.4f}, {norms.max():.4f}])")

        flat_pos = root_pos.reshape(-1, 3)
        flat_quat = root_quat.reshape(-1, 4)
        flat_joint = joint_pos.reshape(-1, g1.NUM_BODY_JOINTS)
        out = np.empty((flat_pos.shape[0], len(self.body_names), 3))
        d, r = self.data, self._root
        for i in range(flat_pos.shape[0]):
            d.qpos[r:r + 3] = flat_pos[i]
            d.qpos[r + 3:r + 7] = flat_quat[i] / norms.reshape(-1)[i]
            d.qpos[self._jq] = flat_joint[i]
            mujoco.mj_kinematics(self.model, d)
            out[i] = d.xpos[self._body_ids]
        return out.reshape(lead + (len(self.body_names), 3))
