"""One module per input format. Each exposes ``NAME``, ``ONE_FILE`` (a recording is one file, not an export of
several), ``sniff(src) -> bool`` and ``read(src, *, limits)``.

``FORMATS`` is the sniffing order: the most specific signatures first, the plain CSV last.
"""

from __future__ import annotations

from types import ModuleType

from ingest.formats import bump_json, phyphox, physics_toolbox, plain_csv, sensor_logger, sensorlog

FORMATS: list[ModuleType] = [bump_json, sensor_logger, sensorlog, phyphox, physics_toolbox, plain_csv]
