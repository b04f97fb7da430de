"""Reader and writer for the canonical ``bump.trace/1`` JSON document (plain or gzip).

Layout: ``docs/trace-format.md``; JSON Schema: ``ingest/schema/bump.trace-1.schema.json``.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import threading
from typing import Any

import numpy as np
import orjson
import simdjson

from ingest.errors import FormatError, SchemaError
from ingest.source import Source
from ingest.trace import FORMAT_ID, Limits, Trace
from ingest.validate import build_trace

NAME = "bump"
ONE_FILE = True                        # a recording is one file


def sniff(src: Source) -> bool:
    return src.single and b'"bump.trace/' in src.head(2048)


def _obj(doc: Any, key: str, *, source: str, required: bool) -> dict[str, Any] | None:
    val = doc.get(key)
    if val is None:
        if required:
            raise SchemaError(f"is missing; a {FORMAT_ID} document needs an {key!r} object", source=source,
                              field=key)
        return None
    if not isinstance(val, dict):
        raise SchemaError(f"must be an object, got {type(val).__name__}", source=source, field=key)
    return val


def _arr(block: dict[str, Any], key: str, prefix: str, *, source: str, required: bool = True) -> Any:
    if key not in block or block[key] is None:
        if required:
            needs = "t, lat and lon" if prefix == "gps" else "t, x, y and z"
            raise SchemaError(f"is missing; the {prefix} block needs {needs}", source=source,
                              field=f"{prefix}.{key}")
        return None
    val = block[key]
    if not isinstance(val, list | np.ndarray):
        raise SchemaError(f"must be a list of numbers, got {type(val).__name__}", source=source,
                          field=f"{prefix}.{key}")
    return val


def parse_document(doc: Any, *, source: str, limits: Limits = Limits()) -> Trace:
    """Validate a decoded ``bump.trace/1`` document and build its Trace."""
    if not isinstance(doc, dict):
        raise SchemaError(f"the document must be a JSON object, got {type(doc).__name__}", source=source)
    fmt = doc.get("format")
    if fmt != FORMAT_ID:
        raise FormatError(f"format is {fmt!r}; expected {FORMAT_ID!r}", source=source, field="format")
    ids = {}
    for key in ("trip_id", "device_id"):
        val = doc.get(key)
        if not isinstance(val, str) or not val.strip():
            raise SchemaError(f"must be a non-empty string, got {val!r}", source=source, field=key)
        if len(val) > 200:
            raise SchemaError(f"is {len(val)} characters long; at most 200", source=source, field=key)
        ids[key] = val
    accel = _obj(doc, "accel", source=source, required=True)
    assert accel is not None
    unit = accel.get("unit", "m/s2")
    gyro = _obj(doc, "gyro", source=source, required=False)
    gyro_unit = "rad/s" if gyro is None else gyro.get("unit", "rad/s")
    gps = _obj(doc, "gps", source=source, required=False)
    vehicle = _obj(doc, "vehicle", source=source, required=False) or {}
    phone = _obj(doc, "phone", source=source, required=False) or {}
    wheelbase = vehicle.get("wheelbase_m")
    if wheelbase is not None and (isinstance(wheelbase, bool) or not (isinstance(wheelbase, int | float)
                                                                      and 1.0 <= wheelbase <= 10.0)):
        raise SchemaError(f"is {wheelbase!r}; a wheelbase in metres between 1 and 10 is expected",
                          source=source, field="vehicle.wheelbase_m")
    return build_trace(
        source=source,
        source_format=NAME,
        trip_id=ids["trip_id"],
        device_id=ids["device_id"],
        accel_t_s=_arr(accel, "t", "accel", source=source),
        accel_xyz=[_arr(accel, k, "accel", source=source) for k in "xyz"],
        accel_unit=unit if isinstance(unit, str) else repr(unit),
        gyro_t_s=None if gyro is None else _arr(gyro, "t", "gyro", source=source),
        gyro_xyz=None if gyro is None else [_arr(gyro, k, "gyro", source=source) for k in "xyz"],
        gyro_unit=gyro_unit if isinstance(gyro_unit, str) else repr(gyro_unit),
        gps_t_s=None if gps is None else _arr(gps, "t", "gps", source=source),
        lat_deg=None if gps is None else _arr(gps, "lat", "gps", source=source),
        lon_deg=None if gps is None else _arr(gps, "lon", "gps", source=source),
        speed_mps=None if gps is None else _arr(gps, "speed", "gps", source=source, required=False),
        heading_deg=None if gps is None else _arr(gps, "heading", "gps", source=source, required=False),
        accuracy_m=None if gps is None else _arr(gps, "accuracy", "gps", source=source, required=False),
        vehicle=vehicle,
        phone=phone,
        limits=limits,
    )


_ARRAY_BLOCKS = ("accel", "gyro", "gps")


# Parsers kept between calls. A simdjson parser reserves ~13 bytes per byte of the largest JSON it has parsed (a
# padded copy, structural indexes, tape, strings) and touches ~3.5 per byte of a canonical trace (16 MiB for a
# 10-minute 100 Hz trip of 4.5 MiB), up to 12 for a document of one-digit numbers. A fresh parser per call pays
# those pages in faults, ~2.5 ms of CPU for that trip (a fifth of its read). A kept parser keeps those pages, so
# only documents up to _POOL_MAX_BYTES are pooled and the pool holds at most _POOL_SIZE parsers: per process,
# <= 2 x 28 MiB resident for canonical traces (<= 2 x 96 MiB whatever the JSON), ~2 x 100 MiB reserved. Parsing
# holds the GIL, so two parsers cover two requests' decodes overlapping; further concurrent or larger documents
# get a parser of their own, freed after the call, as before.
_POOL_SIZE = 2
_POOL_MAX_BYTES = 8 << 20
_pool: list[simdjson.Parser] = []
_pool_lock = threading.Lock()


def _take_parser(n_bytes: int) -> simdjson.Parser:
    """A pooled parser for a document of ``n_bytes`` when one is free and the document small enough, else a new one."""
    if n_bytes <= _POOL_MAX_BYTES:
        with _pool_lock:
            if _pool:
                return _pool.pop()
    return simdjson.Parser()


def _give_back(parser: simdjson.Parser, n_bytes: int) -> None:
    """Keep ``parser`` (which parsed ``n_bytes``, and whose document must be gone) if the pool has room."""
    if n_bytes <= _POOL_MAX_BYTES:
        with _pool_lock:
            if len(_pool) < _POOL_SIZE:
                _pool.append(parser)


def _decode(data: bytes, *, source: str) -> Any:
    """Decode JSON; arrays of the sensor blocks become float64 arrays without Python floats in between.

    simdjson hands a numeric array over as one float64 buffer (the reader's hot path: ~10x faster than
    building Python lists); arrays holding null or non-numbers fall back to lists so that validation can
    report them precisely.
    """
    parser = _take_parser(len(data))
    try:
        doc = parser.parse(data)
        out = _plain(doc)
        del doc              # a parser parses again only once no simdjson object of its last document is alive
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:   # RuntimeError: integers beyond 64 bits
        non_finite = _non_finite_token(data)
        if non_finite is not None:
            token, field, where = non_finite
            raise SchemaError(f"holds a bare {token}{where}: JSON has no NaN or Infinity; write null for a missing "
                              "value (Python's json.dumps writes NaN: turn NaN into None first, or dump with orjson, "
                              "which writes null)", source=source, field=field) from exc
        raise SchemaError(f"is not valid JSON or holds a value bump cannot read ({exc}); check the upload is "
                          "complete and that numbers fit in 64 bits", source=source) from exc
    _give_back(parser, len(data))   # only after success: a traceback may still hold a failed document
    return out


_NON_FINITE = re.compile(rb"[\[,:]\s*(-?(?:NaN|Infinity))\s*[,\]}]")   # a bare token where a value goes
_KEY_BEFORE = re.compile(rb'"([^"\\]{1,64})"\s*:\s*$')


def _in_string(data: bytes, pos: int) -> bool:
    """Whether ``pos`` lies inside a JSON string: an odd number of quotes before it (escaped ones not counted)."""
    return (data.count(b'"', 0, pos) - data.count(b'\\"', 0, pos)) % 2 == 1


def _non_finite_token(data: bytes) -> tuple[str, str | None, str] | None:
    """(token, field, " at index i (byte b)") of the first bare NaN/Infinity of a document that failed to parse
    (Python's json.dumps writes them), else None. Only called on the failure path."""
    tokens = itertools.islice(_NON_FINITE.finditer(data), 64)          # bounded: this path may see any bytes
    m = next((m for m in tokens if not _in_string(data, m.start(1))), None)
    if m is None:
        return None
    pos = m.start(1)
    opening = data.rfind(b"[", 0, pos)
    if opening < 0 or data.rfind(b"]", opening, pos) >= 0:       # not in an array: a plain value such as "x": NaN
        return m[1].decode(), None, f" at byte {pos}"
    key = _KEY_BEFORE.search(data, max(0, opening - 80), opening)
    brace = data.rfind(b"{", 0, opening)
    block = _KEY_BEFORE.search(data, max(0, brace - 80), brace) if brace > 0 else None
    names = [k[1].decode(errors="replace") for k in (block, key) if k is not None]
    index = data.count(b",", opening, pos)
    return m[1].decode(), ".".join(names) or None, f" at index {index} (byte {pos})"


def _plain(doc: Any) -> Any:
    """A parsed simdjson document as Python objects, sensor arrays as float64 arrays."""
    if not isinstance(doc, simdjson.Object):
        return doc.as_list() if isinstance(doc, simdjson.Array) else doc
    out: dict[str, Any] = {}
    for key in doc.keys():
        val = doc[key]
        if key in _ARRAY_BLOCKS and isinstance(val, simdjson.Object):
            block: dict[str, Any] = {}
            for k in val.keys():
                v = val[k]
                if isinstance(v, simdjson.Array):
                    try:
                        arr = np.frombuffer(v.as_buffer(of_type="d"), dtype=np.float64)
                    except (TypeError, ValueError):
                        arr = None
                    # as_buffer flattens nested arrays: a flat array keeps its length, and a column of one-element
                    # lists ([[0.1], [0.2], ...], numpy's (n, 1) .tolist()) shows in its first element (O(1);
                    # nesting further in with an unchanged total count is not caught: a full check costs ~15%)
                    flat = arr is not None and arr.size == len(v) and not (len(v) and isinstance(v[0], simdjson.Array))
                    v = arr if flat else v.as_list()
                elif isinstance(v, simdjson.Object):
                    v = v.as_dict()
                block[k] = v
            out[key] = block
        elif isinstance(val, simdjson.Object):
            out[key] = val.as_dict()
        elif isinstance(val, simdjson.Array):
            out[key] = val.as_list()
        else:
            out[key] = val
    return out


def loads(data: bytes, *, source: str = "<bytes>", limits: Limits = Limits()) -> Trace:
    """Parse ``bump.trace/1`` JSON bytes (already decompressed)."""
    return parse_document(_decode(data, source=source), source=source, limits=limits)


def read(src: Source, *, limits: Limits = Limits()) -> Trace:
    return loads(src.data, source=src.name, limits=limits)


def _require_trace(trace: Any, function: str) -> None:
    if not isinstance(trace, Trace):
        path_like = isinstance(trace, str | os.PathLike | bytes)
        hint = f"; read it first: ingest.{function}(ingest.read(path))" if path_like else ""
        raise TypeError(f"{function}() takes an ingest.Trace, not {type(trace).__name__}{hint}")


def to_document(trace: Trace) -> dict[str, Any]:
    """The ``bump.trace/1`` document of a Trace (arrays stay NumPy; serialise with :func:`dumps`). The gyroscope
    is written in rad/s, the default of its ``unit``, which is therefore not written."""
    _require_trace(trace, "to_document")
    doc: dict[str, Any] = {
        "format": FORMAT_ID,
        "trip_id": trace.trip_id,
        "device_id": trace.device_id,
    }
    if trace.vehicle:
        doc["vehicle"] = trace.vehicle
    if trace.phone:
        doc["phone"] = trace.phone
    doc["accel"] = {"t": trace.t_s, **_axes(trace.accel_mps2), "unit": "m/s2"}
    if trace.has_gyro:
        doc["gyro"] = {"t": trace.gyro_t_s, **_axes(trace.gyro_rad_s)}
    if trace.has_gps:
        doc["gps"] = {"t": trace.gps_t_s, "lat": trace.lat_deg, "lon": trace.lon_deg, "speed": trace.speed_mps,
                      "heading": trace.heading_deg, "accuracy": trace.accuracy_m}
    return doc


def _axes(a: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(a[:, i]) for i, k in enumerate("xyz")}


def _numpy_fallback(obj: Any) -> Any:
    """What orjson's NumPy support leaves out: arrays not C-contiguous (slices such as ``a[::2]``); TypeError
    for anything else."""
    if isinstance(obj, np.ndarray):
        return np.ascontiguousarray(obj)
    raise TypeError(f"cannot write a {type(obj).__name__} into a bump.trace/1 document")


def dumps_document(doc: dict[str, Any], *, compress: bool = False) -> bytes:
    """Serialise a document whose arrays may be NumPy (any layout); NaN becomes null. Shortest round-trip floats."""
    data = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY, default=_numpy_fallback)
    return gzip.compress(data, compresslevel=6, mtime=0) if compress else data


def dumps(trace: Trace, *, compress: bool = False) -> bytes:
    """``bump.trace/1`` bytes of a Trace; gzip when ``compress``."""
    _require_trace(trace, "dumps")
    return dumps_document(to_document(trace), compress=compress)
