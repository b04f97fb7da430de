"""Between SQL rows and NumPy columns: conversions, id sets, IN-list chunks, the list cursor, WHERE clauses."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from bump.store.errors import StoreError
from detect.columns import Columns

_IN_CHUNK = 500          # parameters per IN (...) list



def _py(v: Any) -> Any:
    """A NumPy scalar (or NaN) as a value the driver binds: NaN -> NULL."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _column(values: Sequence[Any], dtype: str) -> np.ndarray:
    """A column of fetched values as an array: NULL -> NaN (f8), -1 (i8), "" (text). Converted first as if there
    were no NULL (``None in values`` compares every value with None: as slow as the conversion), which a NULL makes
    fail (i8) or shows as the text "None" (then looked for)."""
    if dtype == "f8":
        return np.array(values, dtype=np.float64) if values else np.empty(0, dtype=np.float64)
    if dtype == "i8":
        try:
            return np.array(values, dtype=np.int64)
        except TypeError:                   # a NULL
            return np.array([-1 if v is None else v for v in values], dtype=np.int64)
    if not values:
        return np.empty(0, dtype="U1")
    out = np.array(values, dtype=str)
    if (out == "None").any() and None in values:
        out = np.array(["" if v is None else v for v in values], dtype=str)
    return out


def _columns(rows: list[tuple], names: Sequence[str], dtypes: Mapping[str, str]) -> Columns:
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return Columns({n: _column(c, dtypes[n]) for n, c in zip(names, cols, strict=True)})


def _values(a: Any) -> list[Any]:
    """A column as driver-ready Python values (NaN and inf -> NULL)."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        vals = a.tolist()
        return vals if np.isfinite(a).all() else [v if math.isfinite(v) else None for v in vals]
    if a.dtype.kind in "iubU":              # text: Python str already
        return a.tolist()
    return [_py(v) for v in a.tolist()]


def _rows(cols: Mapping[str, Any], names: Sequence[str]) -> list[tuple]:
    return list(zip(*[_values(cols[n]) for n in names], strict=True))


def _known(columns: Sequence[str] | None, catalogue: Mapping[str, str], what: str) -> list[str]:
    """``columns`` (all of the catalogue when None), checked against it: names go into SQL text."""
    names = list(catalogue) if columns is None else list(columns)
    unknown = sorted(set(names) - set(catalogue))
    if unknown:
        raise StoreError(f"unknown {what} columns {unknown}; choose from {', '.join(catalogue)}")
    return names


def _chunks(values: Sequence[Any], n: int = _IN_CHUNK) -> Iterator[list[Any]]:
    values = list(values)
    for i in range(0, len(values), n):
        yield values[i:i + n]


def ids_in(values: Any, among: Any) -> np.ndarray:
    """``np.isin(values, among)`` of integer keys (ids, grid keys) by a sorted search: the same answer without
    np.isin's fixed cost (~5 instead of ~30 us for a trip's few hundred ids; it is called dozens of times a trip).
    Other types go to np.isin."""
    values, among = np.asarray(values), np.asarray(among)
    if values.dtype.kind not in "iu" or among.dtype.kind not in "iu":
        return np.isin(values, among)
    if among.size == 0:
        return np.zeros(values.shape, dtype=bool)
    among = np.sort(among, axis=None)
    at = np.minimum(np.searchsorted(among, values), among.size - 1)
    return among[at] == values


def setdiff_ids(a: Any, b: Any) -> np.ndarray:
    """``np.setdiff1d(a, b)`` (sorted unique values of a not in b), by :func:`ids_in` for integer ids."""
    a = np.unique(np.asarray(a))
    return a[~ids_in(a, b)]


def _id_chunks(ids: Sequence[int], n: int = _IN_CHUNK) -> Iterator[list[int]]:
    """:func:`_chunks` of integer keys (ids, grid or cell keys), each :func:`_padded`."""
    for chunk in _chunks(ids, n):
        yield _padded(chunk)


def _padded(ids: list[int], step: int = 16) -> list[int]:
    """Keys padded with -1 (no defect, no cell) to a multiple of ``step``: few statement texts, each prepared once
    (SQLite parses a list of 300 parameters in ~0.15 ms)."""
    return ids + [-1] * (-len(ids) % step)


def encode_cursor(priority: float, defect_id: int) -> str:
    """Opaque keyset cursor: the last row's (priority, id)."""
    return base64.urlsafe_b64encode(orjson.dumps([priority, defect_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        pad = "=" * (-len(cursor) % 4)
        prio, did = orjson.loads(base64.urlsafe_b64decode(cursor + pad))
        return float(prio), int(did)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise StoreError(f"invalid cursor {cursor!r}; pass the next_cursor of the previous page unchanged",
                         field="cursor") from None



def _time_window(since_s: float | None, until_s: float | None) -> tuple[str, list[float]]:
    """SQL WHERE clause and parameters for ``since_s <= t_s < until_s`` (either bound optional)."""
    where, params = [], []
    if since_s is not None:
        where.append("t_s >= ?")
        params.append(float(since_s))
    if until_s is not None:
        where.append("t_s < ?")
        params.append(float(until_s))
    return ("WHERE " + " AND ".join(where)) if where else "", params


def _scalar(v: Any) -> Any:
    v = v.item() if isinstance(v, np.generic) else v
    return None if isinstance(v, float) and not np.isfinite(v) else v


def _concat(parts: list[Columns], dtypes: Mapping[str, str]) -> Columns:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _columns([], list(dtypes), dtypes)
    if len(parts) == 1:
        return parts[0]
    return Columns({n: np.concatenate([p[n] for p in parts]) for n in dtypes})
