"""ingest: bytes and files -> a validated Trace in canonical units. Imports none of detect, bump, api.

::

    import ingest
    trace = ingest.read("trip.json.gz")      # a file, folder, zip, .gz or bytes -> a validated Trace
    trace                                    # one line: ids, samples, duration [s], rate [Hz], gyro, GPS fixes
    trace.quality.to_dict()                  # rates [Hz], gaps [s], samples dropped and why, problems
    ingest.dumps(trace, compress=True)       # the trace as bump.trace/1 gzip JSON bytes

Units are in the names (``t_s`` seconds since the UNIX epoch, ``accel_mps2`` m/s^2 including gravity,
``gyro_rad_s``, ``lat_deg``, ``speed_mps``). Bad input raises :class:`TraceError` (a ValueError) or one of its
subclasses, naming the file, the field and the fix; an argument of the wrong type raises TypeError.
"""

from ingest.errors import BumpError, FormatError, SchemaError, TraceError, ValidationError
from ingest.formats.bump_json import dumps, to_document
from ingest.read import detect_format, format_names, is_one_file_format, read
from ingest.source import Source, open_source
from ingest.trace import FORMAT_ID, Limits, Quality, Trace

__all__ = [
    "FORMAT_ID",
    "BumpError",
    "FormatError",
    "Limits",
    "Quality",
    "SchemaError",
    "Source",
    "Trace",
    "TraceError",
    "ValidationError",
    "detect_format",
    "dumps",
    "format_names",
    "is_one_file_format",
    "open_source",
    "read",
    "to_document",
]
