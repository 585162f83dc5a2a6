"""The DAgger mixture: teacher and student on one robot, the teacher labelling every state.

Every control tick both policies observe the same robot state and the same motion window, each
through its own contract's observation builder (``TrackingPolicy.observe``): the teacher (e.g. the
TWIST2 student, 1432 inputs, one frame ahead) and the student (the GMT contract, 2154 inputs, 20
frames ahead and 20 steps of history). The teacher's network gives the label; with probability
``teacher_share`` the teacher's action is sent, otherwise the student's.

Actions map between the two by joint *name*, through the PD targets they command: the label for
the student is the raw action that makes the student's contract command the teacher's target,
``(q_teacher - default_student) / action_scale_student`` on each student joint (the teacher's
29 outputs include the wrists, which the 23-joint student does not drive: its contract holds them).

Each sees the reference as its own contract prepares it (``reference:``: velocities, quaternions,
what lies past the clip's end): the episode's window is built by the student's conventions, and the
teacher gets the same stretch of the same clip (same clip time, frames and spacing) prepared by its
own, so each observation is exactly what that policy sees when it is deployed on that clip.

The robot runs the student's deployment configuration whoever acts: the command is always the
student contract's (its gains, its held wrists), so the teacher's wrist outputs are not sent.

"Last action" fed back to each policy (the ``last_action`` term) is the raw action, in that
policy's own joint space, of the targets actually sent on the previous tick:

- the student sees the action that was executed in its own action space: its own raw output when
  it acted, the teacher's sent action when the teacher acted (the label, plus the ``teacher_noise``
  perturbation if any). At deployment its last action is its own output,
  which is what produced the current targets; so in the mixture, too, the fed-back action is the one
  that produced the targets the robot is following, and the relation between the last action and
  the robot's motion is the one it will see at deployment. (Feeding its own unexecuted output
  instead would show it a last action the robot never followed.)
- the teacher sees ``(q_sent - default_teacher) / action_scale_teacher`` on its joints: its own
  (clipped) output when it acted, the student's targets when the student acted, and for joints the
  student's contract holds (the wrists) the hold target's action (0 for the shipped contracts).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gmt_ros.core.command import JointCommand
from gmt_ros.core.frames import MotionWindow
from gmt_ros.core.motion import MotionClip, window_from_clip
from gmt_ros.core.policy import TrackingPolicy


class ActionMap:
    """Raw actions of one policy expressed as another's, through the PD targets, by joint name."""

    def __init__(self, student: TrackingPolicy, teacher: TrackingPolicy):
        s, t = student.contract, teacher.contract
        missing = [n for n in s.joint_names if n not in t.joint_names]
        if missing:
            raise ValueError(f"teacher {t.name!r} does not drive student joint(s) {missing}: it cannot label them")
        self.student_slots = np.asarray(s.slots)
        self.teacher_slots = np.asarray(t.slots)
        self.student_default = np.asarray(s.default_pose, dtype=np.float64)
        self.student_scale = np.asarray(s.action_scale, dtype=np.float64)
        self.teacher_default = np.asarray(t.default_pose, dtype=np.float64)
        self.teacher_scale = np.asarray(t.action_scale, dtype=np.float64)

    def student_action_for(self, command: JointCommand) -> np.ndarray:
        """The student's raw action that commands ``command``'s targets on the student's joints."""
        return (np.asarray(command.q)[self.student_slots] - self.student_default) / self.student_scale

    def teacher_action_for(self, command: JointCommand) -> np.ndarray:
        """The teacher's raw action for ``command``'s targets on the teacher's joints."""
        return (np.asarray(command.q)[self.teacher_slots] - self.teacher_default) / self.teacher_scale


@dataclass
class Recording:
    """What the mixture saw and did, one row per policy tick."""

    observations: list = field(default_factory=list)  # student observations, float32 (obs_dim,)
    labels: list = field(default_factory=list)  # teacher's action in the student's space, float32
    student_acted: list = field(default_factory=list)
    student_error: list = field(default_factory=list)  # |student - label| mean, NaN where not queried

    def arrays(self, obs_dim: int, action_dim: int) -> dict[str, np.ndarray]:
        n = len(self.labels)
        return {
            "observations": (np.stack(self.observations).astype(np.float32, copy=False) if n
                             else np.zeros((0, obs_dim), np.float32)),
            "labels": np.stack(self.labels).astype(np.float32, copy=False) if n else np.zeros((0, action_dim), np.float32),
            "student_acted": np.asarray(self.student_acted, dtype=bool),
            "student_error": np.asarray(self.student_error, dtype=np.float32),
        }


class DaggerMixture:
    """A policy for ``sim2sim.evaluate.run_episode`` (``reset``/``step``, ``contract`` = the
    student's) that runs the teacher/student mixture and records every tick (see module docstring).

    ``teacher_share`` in [0, 1]: probability per tick that the teacher's action is sent; ``rng``
    draws it. With ``teacher_share`` 1 the student's network is never run (its observation still is).
    ``teacher_noise``: standard deviation of Gaussian noise added to the teacher's action when it
    is *sent* (raw action units; the label stays clean): the robot then visits states off the
    teacher's own path, labelled with the teacher's correction (DART), and the fed-back last
    action is not just the label of the previous tick.
    """

    def __init__(self, teacher: TrackingPolicy, student: TrackingPolicy, teacher_share: float,
                 rng: np.random.Generator, teacher_noise: float = 0.0, clip: MotionClip | None = None):
        if not 0.0 <= teacher_share <= 1.0:
            raise ValueError(f"teacher_share must be in [0, 1], got {teacher_share}")
        if not teacher_noise >= 0.0:
            raise ValueError(f"teacher_noise must be >= 0, got {teacher_noise}")
        self.teacher = teacher
        self.student = student
        self.contract = student.contract
        self.actions = ActionMap(student, teacher)
        self.teacher_share = float(teacher_share)
        self.teacher_noise = float(teacher_noise)
        self.rng = rng
        self.clip = clip
        self._same_reference = teacher.contract.reference == student.contract.reference
        if not self._same_reference and clip is None:
            raise ValueError(f"teacher {teacher.contract.name!r} and student {student.contract.name!r} prepare the "
                             "reference differently: give the clip, so the teacher's window can be built its way")
        self.recording = Recording()

    def teacher_window(self, window: MotionWindow) -> MotionWindow:
        """The student's window as the teacher's contract prepares it (the same clip stretch)."""
        if self._same_reference:
            return window
        return window_from_clip(self.clip, window.clip_time, window.start_time, n=len(window.frames),
                                dt=window.dt, conventions=self.teacher.contract.reference)

    def reset(self, state=None) -> None:
        self.teacher.reset(state)
        self.student.reset(state)

    def step(self, state, window, now: float) -> JointCommand:
        student_obs = self.student.observe(state, window, now)
        teacher_obs = self.teacher.observe(state, self.teacher_window(window), now)
        teacher_command = self.teacher.action_to_command(self.teacher.network(teacher_obs))
        label = self.actions.student_action_for(teacher_command)
        teacher_acts = self.teacher_share >= 1.0 or self.rng.random() < self.teacher_share
        if teacher_acts:
            executed, error = label, np.nan
            if self.teacher_noise > 0.0:
                executed = label + self.rng.normal(0.0, self.teacher_noise, label.shape)
        else:
            executed = self.student.network(student_obs)
            error = float(np.mean(np.abs(executed - label)))
        command = self.student.act(executed)  # the student's contract builds what the robot gets
        self.teacher.act(self.actions.teacher_action_for(command))
        rec = self.recording
        rec.observations.append(student_obs.astype(np.float32))
        rec.labels.append(label.astype(np.float32))
        rec.student_acted.append(not teacher_acts)
        rec.student_error.append(error)
        return command
