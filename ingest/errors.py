"""Errors raised by `bump`, one tree rooted at :class:`BumpError`.

::

    BumpError                          anything `bump` reports to a user
    └── TraceError (ValueError)        an input trace is wrong; the message says where and how to fix it
        ├── FormatError                unknown or unreadable format, missing file inside an export
        ├── SchemaError                missing field, wrong type, unequal array lengths, non-numeric value
        └── ValidationError            the values are wrong
            ├── TimestampError         clock runs backwards, too short or too long a trace
            ├── SampleRateError        median sample rate outside the accepted range
            ├── UnitError              units contradict the data (|a| ~ 1 labelled m/s2, ...)
            ├── GpsError               coordinates out of range, (0, 0) fixes
            └── SizeError              more samples than the configured limit

Every error carries ``source`` (file or upload name), ``field`` (dotted path such as ``accel.t``) and a
``code`` (stable, machine-readable, used by the HTTP layer) besides its message. Layers above `ingest`
subclass :class:`BumpError` for their own failures.
"""

from __future__ import annotations


class BumpError(Exception):
    """Root of every error `bump` reports to a user."""

    code = "bump_error"

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None) -> None:
        self.message = message
        self.source = source
        self.field = field
        where = ", ".join(p for p in (source, field) if p)
        super().__init__(f"{where}: {message}" if where else message)


class TraceError(BumpError, ValueError):
    """An input trace is wrong."""

    code = "invalid_trace"


class FormatError(TraceError):
    """The input's format is unknown or unreadable."""

    code = "unknown_format"


class SchemaError(TraceError):
    """A field is missing, of the wrong type, non-numeric, or arrays differ in length."""

    code = "schema"


class ValidationError(TraceError):
    """The values of a well-formed trace are unacceptable."""

    code = "validation"


class TimestampError(ValidationError):
    code = "timestamps"


class SampleRateError(ValidationError):
    code = "sample_rate"


class UnitError(ValidationError):
    code = "units"


class GpsError(ValidationError):
    code = "gps"


class SizeError(ValidationError):
    code = "too_large"
