"""The restricted unpickler: loads real clips, refuses anything that could run code."""
import builtins
import glob
import os
import pickle
import pickletools
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gmt_ros.core.safe_pickle import ALLOWED_GLOBALS, UnsafePickleError, load_pickled_dict, safe_load, safe_loads

ASSETS = Path("/work/shared/assets/motions")
SHIPPED = sorted(glob.glob(str(ASSETS / "*" / "*.pkl")))


def referenced_globals(data: bytes) -> set[str]:
    """Globals a pickle names, read with pickletools (which executes nothing)."""
    found, strings, memo, last = set(), [], {}, None
    for op, arg, _pos in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            strings.append(arg)
            last = arg
        elif op.name == "MEMOIZE":
            memo[len(memo)] = last  # only string memo entries matter here
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            last = memo.get(int(arg))
            strings.append(last)
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}")
            last = None
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
            last = None
        else:
            last = None
    return found


def test_every_shipped_clip_loads_and_names_only_allowed_globals():
    assert len(SHIPPED) == 13
    for path in SHIPPED:
        data = Path(path).read_bytes()
        names = referenced_globals(data)
        assert "numpy.ndarray" in names and names <= ALLOWED_GLOBALS, (path, names)
        clip = load_pickled_dict(path)
        assert {"fps", "root_pos", "root_rot", "dof_pos"} <= set(clip)
        n = clip["root_pos"].shape[0]
        assert clip["root_rot"].shape == (n, 4)
        assert clip["dof_pos"].shape[1] == (23 if "/gmt/" in path else 29)


def test_known_shipped_values():
    walk = load_pickled_dict(ASSETS / "gmt" / "walk_stand.pkl")
    assert walk["dof_pos"].shape == (222, 23) and walk["dof_pos"].dtype == np.float32
    assert walk["link_body_list"][0] == "pelvis"
    squat = load_pickled_dict(ASSETS / "gmt" / "squat.pkl")
    assert squat["fps"] == pytest.approx(60.0, abs=1e-4)
    w4 = load_pickled_dict(ASSETS / "twist2" / "walk_004.pkl")
    assert w4["root_pos"].shape == (380, 3) and w4["root_pos"].dtype == np.float64
    assert w4["root_pos"][0, 2] == pytest.approx(1.827, abs=1e-3)  # the corrupt first frame


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_current_numpy_pickles_round_trip(protocol):
    value = {
        "fps": np.float64(50.0), "n": np.int64(7), "plain": 3.5, "flag": True, "none": None,
        "a32": np.arange(12, dtype=np.float32).reshape(4, 3), "a64": np.linspace(0, 1, 5),
        "ints": np.array([[1, 2], [3, 4]], dtype=np.int16), "bools": np.array([True, False]),
        "names": ["pelvis", "knee"], "nested": ({"x": [1, 2.5]}, b"raw"), "tags": {"a", "b"},
    }
    out = safe_loads(pickle.dumps(value, protocol=protocol))
    assert out.keys() == value.keys()
    for key in ("a32", "a64", "ints", "bools"):
        assert out[key].dtype == value[key].dtype
        np.testing.assert_array_equal(out[key], value[key])
    assert out["fps"] == 50.0 and out["n"] == 7 and out["names"] == ["pelvis", "knee"]
    assert out["nested"] == ({"x": [1, 2.5]}, b"raw") and out["tags"] == {"a", "b"}


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: Path):
    return {
        "posix.system": _Evil(os.system, f"touch {marker}"),
        "builtins.eval": _Evil(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.call": _Evil(subprocess.call, ["touch", str(marker)]),
        "builtins.exec": _Evil(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
    }


def test_the_payloads_are_live_with_plain_pickle(tmp_path):
    # Proves the refusal tests below could fail: unrestricted pickle runs these payloads.
    for name in _payloads(tmp_path / "unused"):
        marker = tmp_path / f"live_{name}"
        pickle.loads(pickle.dumps(_payloads(marker)[name]))
        assert marker.exists(), name


@pytest.mark.parametrize("name", ["posix.system", "builtins.eval", "subprocess.call", "builtins.exec"])
@pytest.mark.parametrize("nested", [False, True])
def test_code_execution_is_refused_before_it_runs(tmp_path, name, nested):
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[name]
    value = {"fps": 30.0, "root_pos": np.zeros((2, 3)), "extra": [payload]} if nested else payload
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(value, protocol=4))
    with pytest.raises(UnsafePickleError, match=rf"refusing to load clip evil.pkl: it references {name}\b"):
        load_pickled_dict(path)
    assert not marker.exists()


def test_protocol0_global_os_system_is_named(tmp_path):
    marker = tmp_path / "pwned"
    data = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    with pytest.raises(UnsafePickleError, match=r"it references os.system"):
        safe_loads(data, "clip handmade")
    assert not marker.exists()


@pytest.mark.parametrize("module,name", [("numpy", "load"), ("numpy", "ndarray.__new__"),
                                         ("builtins", "getattr"), ("numpy.core.multiarray", "_reconstruct.x"),
                                         ("numpy.testing", "assert_equal")])
def test_other_globals_are_refused(module, name):
    data = b"\x80\x04" + f"c{module}\n{name}\n".encode() + b")R."
    with pytest.raises(UnsafePickleError, match=f"references {module}.{name}"):
        safe_loads(data)


def test_object_arrays_are_refused():
    data = pickle.dumps(np.array([1, "text"], dtype=object))
    with pytest.raises(ValueError, match="object array"):
        safe_loads(data, "clip obj")


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(Path(ASSETS / "gmt" / "walk_stand.pkl").read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"cannot read clip cut.pkl: not a valid pickle"):
        load_pickled_dict(path)


@pytest.mark.parametrize("content", [b"hello, this is text\n", b"\x89PNG\r\n\x1a\n" + bytes(64),
                                     b"PK\x03\x04" + bytes(40)])
def test_not_a_pickle(tmp_path, content):
    path = tmp_path / "other.pkl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a valid pickle"):
        safe_load(path)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        safe_load(tmp_path / "empty.pkl")
    with pytest.raises(FileNotFoundError, match=r"nothere.pkl"):
        safe_load(tmp_path / "nothere.pkl")


def test_list_instead_of_dict(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([np.zeros(3), np.ones(3)]))
    with pytest.raises(ValueError, match="expected a pickled dict of arrays, got a list"):
        load_pickled_dict(path)
    path.write_bytes(pickle.dumps({1: np.zeros(3)}))
    with pytest.raises(ValueError, match="keys must be strings"):
        load_pickled_dict(path)
