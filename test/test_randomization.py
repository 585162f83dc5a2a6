"""Domain randomisation: draws, presets, and every effect measured on the real MuJoCo G1."""
import dataclasses
import json

import mujoco
import numpy as np
import pytest

from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from sim2sim.g1_model import build_g1_model, foot_sphere_geoms, g1_index
from sim2sim.randomization import PARAMETERS, DomainRandomization, DrawnParameters
from sim2sim.randomized_model import TERRAIN_GEOM, build_randomized_model, terrain_heights
from sim2sim.runtime_randomization import DelayLine
from sim2sim.simulator import G1Sim

DT = 0.001
N = g1.NUM_BODY_JOINTS
HOLD_KP = np.array([200.0] * 12 + [150.0] * 3 + [40.0] * 14)
HOLD_KD = np.array([5.0] * 12 + [4.0] * 3 + [5.0] * 14)
GYRO = g1_index(build_g1_model(DT)).gyro

# The GMT paper's table, written out here independently of config/randomization.yaml.
GMT_TABLE = {
    "friction": (0.1, 2.0),
    "base_mass_kg": (-3.0, 3.0),
    "base_com_offset_m": (-0.05, 0.05),
    "push_velocity_mps": (-1.0, 1.0),
    "push_interval_s": (5.0, 10.0),
    "motor_strength": (0.8, 1.2),
    "action_delay_s": (0.0, 0.020),
    "terrain_height_m": (0.0, 0.02),
    "gravity_offset_mps2": (-0.1, 0.1),
}


@pytest.fixture(scope="module")
def model():
    return build_g1_model(DT)


def hold_command(q=g1.DEFAULT_POSE):
    return JointCommand(q=np.array(q, float), dq=np.zeros(N), kp=HOLD_KP.copy(), kd=HOLD_KD.copy(),
                        tau=np.zeros(N), enabled=np.ones(N, bool))


def moving_command(seed=7):
    rng = np.random.default_rng(seed)
    return JointCommand(q=g1.Q_MIN + (g1.Q_MAX - g1.Q_MIN) * rng.uniform(0.2, 0.8, N),
                        dq=rng.uniform(-2, 2, N), kp=rng.uniform(5, 60, N), kd=rng.uniform(0.5, 3, N),
                        tau=rng.uniform(-2, 2, N), enabled=np.ones(N, bool))


AIRBORNE = dict(root_pos=[0.0, 0.0, 3.0], root_ang_vel=[0.4, -0.7, 1.1],
                joint_vel=np.linspace(-1.0, 1.0, N))


def dr(**values) -> DrawnParameters:
    return DrawnParameters(preset="test", **values)


def trajectory(sim: G1Sim, steps=300) -> bytes:
    sim.set_command(hold_command(g1.DEFAULT_POSE + 0.05))
    out = b""
    for _ in range(steps // 20):
        out += sim.state().joint_pos.tobytes()
        sim.step(20)
        sim.set_command(hold_command())
    return out + sim.data.qpos.tobytes() + sim.data.qvel.tobytes()


# -- presets and draws --------------------------------------------------------------------------

def test_gmt_preset_is_the_papers_table():
    assert DomainRandomization.load("gmt").ranges == GMT_TABLE
    assert DomainRandomization.load("none").ranges == {}
    assert set(DomainRandomization.preset_names()) >= {"none", "gmt", "hard"}
    hard = DomainRandomization.load("hard").ranges
    assert set(hard) == set(PARAMETERS)  # every effect
    for key, (lo, hi) in GMT_TABLE.items():  # at least as wide as the paper, pushes more often
        if key == "push_interval_s":
            assert hard[key][1] <= hi, key
        else:
            assert hard[key][0] <= lo and hard[key][1] >= hi, key


@pytest.mark.parametrize("preset", ["gmt", "hard"])
def test_draws_stay_inside_their_ranges_and_cover_them(preset):
    randomization = DomainRandomization.load(preset)
    ranges = randomization.ranges
    draws = [randomization.draw(seed) for seed in range(150)]
    for key, (lo, hi) in ranges.items():
        if key == "push_interval_s":
            gaps = np.concatenate([np.diff((0.0,) + d.push_times_s) for d in draws])
            values = gaps
        elif key == "push_velocity_mps":
            values = np.concatenate([np.ravel(d.push_velocities_mps) for d in draws])
        else:
            values = np.concatenate([np.ravel(getattr(d, key)) for d in draws])
        assert values.min() >= lo and values.max() <= hi, key
        assert values.min() < lo + 0.1 * (hi - lo) and values.max() > hi - 0.1 * (hi - lo), key
    for d in draws:  # pushes fill the horizon, each drawn once per interval
        assert 120.0 - ranges["push_interval_s"][1] <= d.push_times_s[-1] < 120.0
        assert len(d.push_velocities_mps) == len(d.push_times_s)


def test_same_seed_same_draw_other_seed_differs():
    a, b, c = (DomainRandomization.from_preset("hard", s) for s in (11, 11, 12))
    assert a == b and a.as_dict() == b.as_dict()
    assert a.friction != c.friction and a.motor_strength != c.motor_strength and a.runtime_seed != c.runtime_seed
    # Each parameter has its own stream: dropping others from the preset leaves it unchanged.
    only = DomainRandomization({"friction": [0.1, 2.5], "motor_strength": [0.7, 1.3]}, name="hard").draw(11)
    assert only.friction == a.friction and only.motor_strength == a.motor_strength


def test_as_dict_is_json_and_round_trips():
    drawn = DomainRandomization.from_preset("hard", 3)
    text = json.dumps(drawn.as_dict())
    back = DrawnParameters.from_dict(json.loads(text))
    assert back == drawn
    assert json.loads(json.dumps(DomainRandomization.from_preset("none", 3).as_dict()))["friction"] is None


def test_unknown_preset_and_bad_files_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown randomization preset 'gmtt'; available: none, gmt, hard"):
        DomainRandomization.load("gmtt")
    bad = tmp_path / "bad.yaml"
    bad.write_text("friction: [0.5, 1.0]\nfriction_typo: [0, 1]\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown randomization parameter\(s\) 'friction_typo'; known: friction"):
        DomainRandomization.load(bad)
    cases = [
        ({"friction": [0.0, 1.0]}, r"friction range \[0.0, 1.0\] is outside the allowed \(0.0, 5.0\]"),
        ({"base_mass_kg": [2.0, 1.0]}, r"base_mass_kg range \[2.0, 1.0\] has low > high"),
        ({"action_delay_s": [0.0, "20ms"]}, r"action_delay_s must be \[low, high\] or a number"),
        ({"push_velocity_mps": [-1, 1]}, "push_velocity_mps and push_interval_s must be given together"),
        ({"command_drop_prob": [0.0, 1.0]}, r"command_drop_prob range .* outside the allowed \[0.0, 0.9\]"),
    ]
    for ranges, message in cases:
        with pytest.raises(ValueError, match=message):
            DomainRandomization(ranges)
    with pytest.raises(ValueError, match=r"randomization file .*missing.yaml does not exist"):
        DomainRandomization.load(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        DomainRandomization.from_preset("gmt", -1)
    with pytest.raises(ValueError, match=r"unknown DrawnParameters keys \['frction'\]"):
        DrawnParameters.from_dict({"frction": 1.0})
    with pytest.raises(ValueError, match="motor_strength must hold 29 finite numbers"):
        dr(motor_strength=(1.0,) * 23)
    with pytest.raises(TypeError, match="randomization must be DrawnParameters"):
        G1Sim(randomization={"friction": 1.0})


def test_custom_preset_file(tmp_path):
    path = tmp_path / "mine.yml"
    path.write_text("friction: 0.8\naction_delay_s: [0.0, 0.01]\n")
    drawn = DomainRandomization.from_preset(path, 2)
    assert drawn.preset == "mine" and drawn.friction == 0.8 and 0.0 <= drawn.action_delay_s <= 0.01


# -- no randomisation, determinism -------------------------------------------------------------

def test_none_preset_is_bit_identical_to_no_randomization(model):
    plain = trajectory(G1Sim(model, physics_dt=DT, seed=5))
    sim = G1Sim(model, physics_dt=DT, seed=5, randomization=DomainRandomization.from_preset("none", 5))
    assert sim.randomization.is_neutral and sim.randomization.as_dict()["preset"] == "none"
    assert trajectory(sim) == plain
    # The comparison can see a difference: a 1 ms action delay alone changes the bytes.
    assert trajectory(G1Sim(model, physics_dt=DT, seed=5, randomization=dr(action_delay_s=0.001))) != plain


def test_same_seed_same_trajectory_other_seed_differs():
    runs = [trajectory(G1Sim.randomized("hard", s)) for s in (21, 21, 22)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    sim = G1Sim.randomized("hard", 21)
    assert sim.seed == 21 and sim.randomization == DomainRandomization.from_preset("hard", 21)
    first = trajectory(sim)
    sim.reset()  # a reset replays the episode: runtime randomness is re-seeded
    assert trajectory(sim) == first == runs[0]


# -- model-level effects ------------------------------------------------------------------------

def test_friction_mass_com_gravity_in_the_compiled_model(model):
    drawn = dr(friction=0.3, base_mass_kg=2.5, base_com_offset_m=(0.01, -0.02, 0.03),
               gravity_offset_mps2=(0.05, -0.05, 0.1))
    randomized = build_randomized_model(drawn, DT)
    feet = foot_sphere_geoms(randomized)
    assert len(feet) == 8
    np.testing.assert_array_equal(randomized.geom_friction[feet, 0], 0.3)
    np.testing.assert_array_equal(model.geom_friction[feet, 0], 0.6)  # Menagerie's, untouched
    others = np.setdiff1d(np.arange(model.ngeom), feet)
    np.testing.assert_array_equal(randomized.geom_friction[others], model.geom_friction[others])
    assert abs(randomized.body_mass.sum() - model.body_mass.sum() - 2.5) < 1e-12
    pelvis = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "pelvis")
    assert abs(randomized.body_mass[pelvis] - 3.813 - 2.5) < 1e-12  # added to the pelvis
    assert abs(randomized.body_subtreemass[pelvis] - model.body_subtreemass[pelvis] - 2.5) < 1e-9
    np.testing.assert_allclose(randomized.body_ipos[pelvis] - model.body_ipos[pelvis], [0.01, -0.02, 0.03], atol=1e-15)
    np.testing.assert_allclose(randomized.opt.gravity, [0.05, -0.05, -9.71], atol=1e-12)

    sim = G1Sim(randomized, physics_dt=DT, randomization=drawn)
    sim.set_command(hold_command())
    sim.step(50)
    # The soles' contacts really use the drawn friction (their contact priority beats the floor's 1.0).
    sole_contacts = [c for c in sim.data.contact[:sim.data.ncon] if c.geom1 in feet or c.geom2 in feet]
    assert sole_contacts and all(c.friction[0] == 0.3 for c in sole_contacts)
    # Standing still, the accelerometer reads minus the (randomised) gravity.
    sim.step(1500)
    quat = sim.root_pose()[1]
    np.testing.assert_allclose(sim.state().imu_acc, rotations.rotate_inverse(quat, [-0.05, 0.05, 9.71]), atol=0.05)

    with pytest.raises(ValueError, match=r"does not carry the drawn randomisation.*pelvis mass 3.813 kg"):
        G1Sim(model, physics_dt=DT, randomization=drawn)


def test_terrain_heightfield_replaces_the_plane_and_holds_the_feet():
    drawn = dr(terrain_height_m=0.02, terrain_seed=3)
    sim = G1Sim(physics_dt=DT, randomization=drawn)
    m = sim.model
    terrain = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, TERRAIN_GEOM)
    hfield = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_HFIELD, TERRAIN_GEOM)
    assert terrain >= 0 and m.geom_type[terrain] == mujoco.mjtGeom.mjGEOM_HFIELD
    rows, cols = m.hfield_nrow[hfield], m.hfield_ncol[hfield]
    surface = m.hfield_data[m.hfield_adr[hfield]:m.hfield_adr[hfield] + rows * cols].reshape(rows, cols)
    surface = surface * m.hfield_size[hfield, 2] + m.geom_pos[terrain, 2]
    heights = terrain_heights(drawn)
    np.testing.assert_allclose(surface, heights, atol=1e-8)  # float32 storage
    assert heights.min() == -0.02 and heights.max() == 0.0
    floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    assert m.geom_pos[floor, 2] < -0.02  # the plane is below every bump

    feet = foot_sphere_geoms(m)
    sim.set_command(hold_command())
    lowest, on_terrain = np.inf, 0
    for _ in range(50):
        sim.step(20)
        lowest = min(lowest, float(np.min(sim.data.geom_xpos[feet, 2] - m.geom_size[feet, 0])))
        pairs = [(c.geom1, c.geom2) for c in sim.data.contact[:sim.data.ncon]]
        assert not any(floor in p for p in pairs)  # the plane is never reached
        on_terrain += sum(terrain in p and (p[0] in feet or p[1] in feet) for p in pairs)
    assert on_terrain > 0  # the soles stand on the heightfield ...
    assert lowest > -0.02 - 0.002  # ... and never sink below the deepest bump (2 mm contact softness)


# -- runtime effects ----------------------------------------------------------------------------

def test_motor_strength_gain_error_and_joint_offset_in_the_pd(model):
    rng = np.random.default_rng(1)
    drawn = dr(motor_strength=rng.uniform(0.8, 1.2, N), kp_scale=rng.uniform(0.8, 1.2, N),
               kd_scale=rng.uniform(0.7, 1.3, N), joint_pos_offset_rad=rng.uniform(-0.02, 0.02, N))
    sim = G1Sim(model, physics_dt=DT, randomization=drawn)
    sim.reset(**AIRBORNE)
    cmd = moving_command()
    cmd.kp[3] = 1e4  # left knee: the clip must still engage after scaling
    sim.set_command(cmd)
    s, kps, kds, off = (np.array(x) for x in (drawn.motor_strength, drawn.kp_scale, drawn.kd_scale,
                                               drawn.joint_pos_offset_rad))
    for _ in range(5):
        q = sim.data.qpos[7:].copy()  # the true joint state (free joint first, then slot order)
        dq = sim.data.qvel[6:].copy()
        sim.step(1)
        raw = s * (cmd.kp * kps * (cmd.q - (q + off)) + cmd.kd * kds * (cmd.dq - dq) + cmd.tau)
        expected = np.clip(raw, -g1.TAU_MAX, g1.TAU_MAX)
        np.testing.assert_allclose(sim.applied_torque(), expected, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(sim.data.actuator_force, expected, rtol=1e-9, atol=1e-9)
        assert sim.applied_torque()[3] == np.sign(raw[3]) * g1.TAU_MAX[3]
    # The reported joint positions carry the calibration offset, nothing else.
    np.testing.assert_allclose(sim.state().joint_pos - sim.data.qpos[7:], off, atol=1e-15)
    np.testing.assert_array_equal(sim.state().joint_vel, sim.data.qvel[6:])


def test_action_delay_lags_the_torque_by_k_steps(model):
    k = 7
    sim = G1Sim(model, physics_dt=DT, randomization=dr(action_delay_s=k * DT))
    prompt = G1Sim(model, physics_dt=DT)
    cmd = moving_command()
    for s in (sim, prompt):
        s.reset(**AIRBORNE)
        s.set_command(cmd)
    prompt.step(1)
    assert np.all(prompt.applied_torque() != 0.0)
    for i in range(k + 3):
        q, dq = sim.data.qpos[7:].copy(), sim.data.qvel[6:].copy()
        sim.step(1)
        if i < k:
            np.testing.assert_array_equal(sim.applied_torque(), 0.0)  # still the reset's zero torque
            np.testing.assert_array_equal(sim.motor_command.kp, 0.0)
        else:
            expected = np.clip(cmd.kp * (cmd.q - q) + cmd.kd * (cmd.dq - dq) + cmd.tau, -g1.TAU_MAX, g1.TAU_MAX)
            np.testing.assert_allclose(sim.applied_torque(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(sim.command.q, cmd.q)
    # A later command also waits k steps; the previous one holds meanwhile.
    hold = hold_command()
    sim.set_command(hold)
    sim.step(k)
    np.testing.assert_array_equal(sim.motor_command.q, cmd.q)
    sim.step(1)
    np.testing.assert_array_equal(sim.motor_command.q, hold.q)


def test_delay_line_jitter_order_and_drops():
    line = DelayLine(delay_steps=3, jitter_steps=4, drop_prob=0.2, rng=np.random.default_rng(0))
    arrivals = [line.send(i, now=i) for i in range(4000)]
    kept = [(i, a) for i, a in enumerate(arrivals) if a is not None]
    lost = 4000 - len(kept)
    assert 640 < lost < 960 and lost == line.dropped  # binomial(4000, 0.2): mean 800, sd 25
    lags = np.array([a - i for i, a in kept])
    assert lags.min() >= 3 and lags.max() <= 3 + 4 + 4  # jitter, plus waiting behind a later-jittered one
    assert np.all(np.diff([a for _, a in kept]) >= 0)  # never overtakes
    assert set(range(3, 8)) <= set(lags.tolist())
    received = [line.receive(now) for now in range(4020)]
    got = [r for r in received if r is not None]
    assert got == sorted(got) and line.pending == 0
    with pytest.raises(ValueError, match="needs a random generator"):
        DelayLine(1, jitter_steps=2)


def test_push_changes_root_velocity_by_the_drawn_amount_at_the_drawn_time(model):
    drawn = dr(push_times_s=(0.05, 0.12), push_velocities_mps=((0.4, -0.3), (-0.2, 0.5)))
    sim = G1Sim(model, physics_dt=DT, randomization=drawn)
    sim.reset(root_pos=[0.0, 0.0, 3.0])  # free fall, zero torque: nothing else moves it sideways
    sim.step(49)
    np.testing.assert_allclose(sim.root_velocity()[0][:2], 0.0, atol=1e-8)
    sim.step(1)
    assert abs(sim.time - 0.05) < 1e-12
    np.testing.assert_allclose(sim.root_velocity()[0][:2], [0.4, -0.3], atol=1e-9)
    sim.step(69)
    np.testing.assert_allclose(sim.root_velocity()[0][:2], [0.4, -0.3], atol=1e-9)
    sim.step(1)
    np.testing.assert_allclose(sim.root_velocity()[0][:2], [0.2, 0.2], atol=1e-9)
    assert abs(sim.root_velocity()[0][2] + 9.81 * 0.12) < 0.01  # still falling freely
    # The whole robot moved with the pelvis: the body frames' spread is unchanged.
    np.testing.assert_allclose(sim.root_pose()[0][:2], [0.4 * 0.07, -0.3 * 0.07], atol=2e-4)


def test_imu_bias_and_noise_in_state(model):
    drawn = dr(gyro_bias_radps=(0.02, -0.03, 0.01), gyro_noise_radps=0.05, attitude_bias_rad=(0.02, -0.01, 0.0),
               accel_noise_mps2=0.1)
    sim = G1Sim(model, physics_dt=DT, randomization=drawn)
    sim.reset(**AIRBORNE)
    sim.step(10)
    true_gyro = sim.data.sensordata[GYRO].copy()
    true_quat = sim.root_pose()[1]
    reads = [sim.state() for _ in range(2000)]
    gyro_err = np.array([r.imu_gyro for r in reads]) - true_gyro
    np.testing.assert_allclose(gyro_err.mean(axis=0), [0.02, -0.03, 0.01], atol=4 * 0.05 / np.sqrt(2000))
    np.testing.assert_allclose(gyro_err.std(axis=0), 0.05, rtol=0.1)
    acc = np.array([r.imu_acc for r in reads])
    np.testing.assert_allclose(acc.std(axis=0), 0.1, rtol=0.1)
    # Orientation: the true attitude turned by the mounting error, in the pelvis frame.
    expected = rotations.multiply(true_quat, rotations.from_rpy(np.array([0.02, -0.01, 0.0])))
    np.testing.assert_allclose(reads[0].imu_quat, expected, atol=1e-12)
    np.testing.assert_array_equal(reads[0].joint_pos, sim.data.qpos[7:])  # no joint errors drawn
    # Ground truth stays undisturbed.
    np.testing.assert_array_equal(sim.root_pose()[1], true_quat)


def test_state_delay_jitter_and_drops(model):
    sim = G1Sim(model, physics_dt=DT, randomization=dr(state_delay_s=0.005))
    sim.reset(**AIRBORNE)
    truth = []
    for _ in range(30):
        truth.append((sim.data.qpos[7:].copy(), sim.data.sensordata[GYRO].copy()))
        sim.step(1)
    s = sim.state()
    np.testing.assert_array_equal(s.joint_pos, truth[30 - 5][0])
    np.testing.assert_array_equal(s.imu_gyro, truth[30 - 5][1])
    assert s.tick == 25 and s.stamp == sim.time  # taken 5 ms ago, arrived now

    sim = G1Sim(model, physics_dt=DT, randomization=dr(state_delay_s=0.002, state_jitter_s=0.003,
                                                        state_drop_prob=0.3, runtime_seed=4))
    sim.reset(**AIRBORNE)
    ticks, repeats, ages = [], 0, []
    previous = None
    for i in range(400):
        sim.step(1)
        s = sim.state()
        ticks.append(s.tick)
        if previous is not None and s.tick == previous.tick and s.stamp == previous.stamp:
            repeats += 1
            np.testing.assert_array_equal(s.joint_pos, previous.joint_pos)
        else:
            ages.append(i + 1 - s.tick)
        previous = s
    assert np.all(np.diff(ticks) >= 0)  # never older than the last read
    assert 80 < repeats < 160  # about 30 % of 400 reads lost
    assert min(ages) >= 0 and max(ages) <= 5 and {2, 3, 4, 5} <= set(ages)


def test_hard_preset_runs_and_reports(model):
    sim = G1Sim.randomized("hard", 8)
    sim.set_command(hold_command())
    sim.step(200)
    s = sim.state()
    s.validate()
    report = json.loads(json.dumps(sim.randomization.as_dict()))
    assert report["preset"] == "hard" and report["seed"] == 8 and len(report["motor_strength"]) == N
    assert dataclasses.replace(sim.randomization) == sim.randomization
