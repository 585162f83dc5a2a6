"""Read pickled motion clips without running code from them.

``pickle.load`` imports and calls whatever globals a file names (``os.system``, ``eval``, ...),
so a downloaded clip could run anything. The unpickler here resolves only an explicit allow-list
of the globals that numpy arrays and scalars need; every other global is refused before anything
is called, with an error that names it. Plain containers (dict, list, tuple, str, numbers, bytes)
need no globals at all in pickle protocols 2-5.
"""
from __future__ import annotations

import _compat_pickle
import codecs
import io
import pickle
from pathlib import Path

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]


class UnsafePickleError(ValueError):
    """The pickle references a global outside the allow-list (it could execute code)."""


# (module, name) -> object. numpy 1.x writes numpy.core.*, numpy 2.x numpy._core.*; both map to
# the same harmless constructors. Names are matched exactly: no dotted attribute paths.
_ALLOWED: dict[tuple[str, str], object] = {}
for _module in ("numpy.core", "numpy._core"):
    _ALLOWED[(_module + ".multiarray", "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(_module + ".multiarray", "scalar")] = _multiarray.scalar
    _ALLOWED[(_module + ".numeric", "_frombuffer")] = _numeric._frombuffer  # type: ignore[attr-defined]
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = np.dtype
# Protocols 0-2 encode bytes as _codecs.encode(text, "latin1"); it only converts text to bytes.
_ALLOWED[("_codecs", "encode")] = codecs.encode
_ALLOWED[("builtins", "set")] = set
_ALLOWED[("builtins", "frozenset")] = frozenset
_ALLOWED[("builtins", "bytearray")] = bytearray

ALLOWED_GLOBALS: frozenset[str] = frozenset(f"{m}.{n}" for m, n in _ALLOWED)

_PLAIN_TYPES = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic)


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` only hands out allow-listed numpy constructors."""

    def __init__(self, file, what: str):
        super().__init__(file)
        self._what = what

    def find_class(self, module: str, name: str):
        # Protocols 0-2 name Python 2 modules (__builtin__.set); map them as pickle's own
        # find_class does. The result still has to be on the allow-list.
        key = _compat_pickle.NAME_MAPPING.get(
            (module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
        try:
            return _ALLOWED[key]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {self._what}: it references {module}.{name}, which is not one "
                f"of the numpy/container globals a motion clip needs (allowed: "
                f"{', '.join(sorted(ALLOWED_GLOBALS))})"
            ) from None


def _check_plain(value, what: str, depth: int = 0) -> None:
    """Only numeric arrays, numbers, strings and containers of them may come out."""
    if depth > 20:
        raise ValueError(f"{what}: nesting deeper than 20 levels")
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise ValueError(f"{what}: contains an object array (dtype {value.dtype}); clips hold numeric arrays")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, what, depth + 1)
            _check_plain(item, what, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check_plain(item, what, depth + 1)
    elif not isinstance(value, _PLAIN_TYPES):
        raise ValueError(f"{what}: contains an unexpected {type(value).__name__} object")


def safe_loads(data: bytes, what: str = "pickle"):
    """Unpickle bytes allowing only numpy arrays/scalars and plain containers."""
    try:
        value = RestrictedUnpickler(io.BytesIO(data), what).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, UnicodeDecodeError, OverflowError, MemoryError, RecursionError) as exc:
        raise ValueError(
            f"cannot read {what}: not a valid pickle (truncated, corrupt or another format): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    _check_plain(value, what)
    return value


def safe_load(path: str | Path, what: str | None = None):
    """Unpickle a file safely (see ``safe_loads``); ``what`` names it in errors."""
    path = Path(path)
    what = what or f"clip {path.name}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read {what}: {exc}") from None
    if not data:
        raise ValueError(f"cannot read {what}: the file {path} is empty")
    return safe_loads(data, what)


def load_pickled_dict(path: str | Path, what: str | None = None) -> dict:
    """A safely unpickled dict with string keys, as GMT/TWIST2 clips are stored."""
    path = Path(path)
    what = what or f"clip {path.name}"
    value = safe_load(path, what)
    if not isinstance(value, dict):
        raise ValueError(f"{what}: expected a pickled dict of arrays, got a {type(value).__name__}")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise ValueError(f"{what}: dict keys must be strings, got {bad[:3]!r}")
    return value
