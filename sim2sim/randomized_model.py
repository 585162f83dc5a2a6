"""Where a domain-randomisation draw acts on the model (``sim2sim.randomization``): the pelvis mass
and centre of mass, gravity and the terrain as ``MjSpec`` edits before compiling, sole friction as a
direct ``MjModel`` edit after it; and the check that a given model carries them."""
from __future__ import annotations

import mujoco
import numpy as np

from sim2sim.g1_model import DEFAULT_TIMESTEP, ROOT_BODY, build_g1_spec, compile_g1, foot_sphere_geoms
from sim2sim.randomization import DrawnParameters

# Heightfield floor: ±10 m square (the shipped clips stay within 5.5 m of the origin), one height
# per 0.1 m (legged_gym's horizontal scale), a 5 cm slab below the deepest bump.
TERRAIN_HALF_SIZE_M = 10.0
TERRAIN_CELL_M = 0.1
TERRAIN_BASE_M = 0.05
TERRAIN_GEOM = "terrain"
FLOOR_GEOM = "floor"
_FLOOR_BELOW_TERRAIN_M = 0.001


def terrain_heights(drawn: DrawnParameters) -> np.ndarray:
    """Surface heights (m) of the heightfield floor, (rows, cols) spanning exactly [-a, 0]; rows run
    along y."""
    n = int(round(2 * TERRAIN_HALF_SIZE_M / TERRAIN_CELL_M)) + 1
    u = np.random.default_rng(drawn.terrain_seed).uniform(0.0, 1.0, size=(n, n))
    u = (u - u.min()) / (u.max() - u.min())  # MuJoCo rescales heightfield data to [0, 1]: do it here
    return drawn.terrain_height_m * (u - 1.0)


def build_randomized_model(drawn: DrawnParameters, physics_dt: float = DEFAULT_TIMESTEP) -> mujoco.MjModel:
    """The G1 model with ``drawn``'s model-level effects (see the module table)."""
    spec = build_g1_spec(physics_dt)
    randomize_spec(spec, drawn)
    return randomize_compiled(compile_g1(spec), drawn)


def randomize_spec(spec: mujoco.MjSpec, drawn: DrawnParameters) -> None:
    """The spec edits: pelvis mass and centre of mass, gravity, terrain. For a scene built on
    :func:`build_g1_spec` with more in it (e.g. a gantry): edit, compile, then
    :func:`randomize_compiled`."""
    pelvis = spec.body(ROOT_BODY)
    if pelvis is None:
        raise ValueError(f"the spec has no body {ROOT_BODY!r} to randomise")
    if drawn.base_mass_kg != 0.0:
        mass = pelvis.mass + drawn.base_mass_kg
        if not mass > 0:
            raise ValueError(f"base_mass_kg {drawn.base_mass_kg} kg leaves the pelvis ({pelvis.mass} kg) "
                             f"without positive mass")
        pelvis.mass = mass
    if any(drawn.base_com_offset_m):
        pelvis.ipos = np.asarray(pelvis.ipos) + np.asarray(drawn.base_com_offset_m)
    if any(drawn.gravity_offset_mps2):
        spec.option.gravity = np.asarray(spec.option.gravity) + np.asarray(drawn.gravity_offset_mps2)
    if drawn.terrain_height_m > 0.0:
        _add_terrain(spec, drawn)


def randomize_compiled(model: mujoco.MjModel, drawn: DrawnParameters) -> mujoco.MjModel:
    """The direct model edit: sole friction (it feeds no derived quantity, so no recompile)."""
    if drawn.friction is not None:
        model.geom_friction[foot_sphere_geoms(model), 0] = drawn.friction
    return model


def check_randomized_model(model: mujoco.MjModel, drawn: DrawnParameters) -> None:
    """Raise ValueError unless ``model`` carries ``drawn``'s model-level effects (so a G1Sim given a
    model cannot silently run without them)."""
    reference = build_g1_spec(model.opt.timestep)  # parsing only, no compile: a few ms
    pelvis_ref = reference.body(ROOT_BODY)
    pelvis = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, ROOT_BODY)
    problems = []
    if abs(model.body_mass[pelvis] - (pelvis_ref.mass + drawn.base_mass_kg)) > 1e-9:
        problems.append(f"pelvis mass {model.body_mass[pelvis]} kg, expected {pelvis_ref.mass + drawn.base_mass_kg}")
    if not np.allclose(model.body_ipos[pelvis], np.asarray(pelvis_ref.ipos) + drawn.base_com_offset_m, atol=1e-9):
        problems.append(f"pelvis centre of mass {model.body_ipos[pelvis]}")
    if not np.allclose(model.opt.gravity, np.asarray(reference.option.gravity) + drawn.gravity_offset_mps2, atol=1e-12):
        problems.append(f"gravity {model.opt.gravity}")
    feet = foot_sphere_geoms(model)
    friction = drawn.friction if drawn.friction is not None else reference.find_default("foot").geom.friction[0]
    if not np.all(model.geom_friction[feet, 0] == friction):
        problems.append(f"sole friction {model.geom_friction[feet, 0]}, expected {friction}")
    terrain = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_HFIELD, TERRAIN_GEOM)
    if drawn.terrain_height_m > 0.0:
        if terrain < 0 or abs(model.hfield_size[terrain, 2] - drawn.terrain_height_m) > 1e-12:
            problems.append(f"no heightfield {TERRAIN_GEOM!r} of amplitude {drawn.terrain_height_m} m")
    elif terrain >= 0:
        problems.append(f"a heightfield {TERRAIN_GEOM!r} the draw does not have")
    if problems:
        raise ValueError("the model does not carry the drawn randomisation (build it with "
                         "build_randomized_model, or pass model=None): " + "; ".join(problems))


def _add_terrain(spec: mujoco.MjSpec, drawn: DrawnParameters) -> None:
    a = drawn.terrain_height_m
    heights = terrain_heights(drawn)
    rows, cols = heights.shape
    # MuJoCo scales the [0, 1] data by the elevation size and adds the geom's z position.
    spec.add_hfield(name=TERRAIN_GEOM, size=[TERRAIN_HALF_SIZE_M, TERRAIN_HALF_SIZE_M, a, TERRAIN_BASE_M],
                    nrow=rows, ncol=cols, userdata=(heights / a + 1.0).ravel())
    floor = spec.geom(FLOOR_GEOM)
    if floor is None:
        raise ValueError(f"the G1 scene has no geom {FLOOR_GEOM!r} to put the terrain on")
    spec.worldbody.add_geom(name=TERRAIN_GEOM, type=mujoco.mjtGeom.mjGEOM_HFIELD, hfieldname=TERRAIN_GEOM,
                            pos=[0.0, 0.0, -a], friction=floor.friction, material=floor.material)
    floor.pos = [0.0, 0.0, -a - _FLOOR_BELOW_TERRAIN_M]
