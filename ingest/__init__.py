"""ingest: bytes and files -> a validated Trace in canonical units. Imports none of detect, bump, api."""

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
