"""Shared fixtures: small valid bump.trace/1 documents built from physics-free but plausible values."""

from __future__ import annotations

import copy
import io
import zipfile
from typing import Any

import numpy as np
import pytest

T0_S = 1_780_000_000.0   # 2026-05-28, an arbitrary epoch time


def make_doc(*, duration_s: float = 10.0, rate_hz: float = 50.0, seed: int = 0, gps: bool = True,
             gyro: bool = True) -> dict[str, Any]:
    """A valid bump.trace/1 document as plain lists: phone flat, gravity on +z, 1 Hz GPS going north."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * rate_hz)
    t = T0_S + np.arange(n) / rate_hz
    doc: dict[str, Any] = {
        "format": "bump.trace/1", "trip_id": f"trip-{seed}", "device_id": "dev-1",
        "vehicle": {"kind": "car", "wheelbase_m": 2.7}, "phone": {"os": "android", "model": "test"},
        "accel": {"t": t.tolist(), "x": rng.normal(0.0, 0.2, n).tolist(), "y": rng.normal(0.0, 0.2, n).tolist(),
                  "z": (9.81 + rng.normal(0.0, 0.3, n)).tolist(), "unit": "m/s2"},
    }
    if gyro:
        doc["gyro"] = {"t": t.tolist(), "x": rng.normal(0, 0.01, n).tolist(), "y": rng.normal(0, 0.01, n).tolist(),
                       "z": rng.normal(0, 0.01, n).tolist()}
    if gps:
        k = int(duration_s)
        doc["gps"] = {"t": (T0_S + np.arange(k)).tolist(), "lat": (42.36 + 1e-4 * np.arange(k)).tolist(),
                      "lon": [-71.06] * k, "speed": [11.1] * k, "heading": [0.0] * k, "accuracy": [5.0] * k}
    return doc


@pytest.fixture
def doc() -> dict[str, Any]:
    return copy.deepcopy(make_doc())


def zip_of(members: dict[str, str | bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    """A zip archive of ``members`` (name -> contents), packed with ``method``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
