"""The service's errors: one class per HTTP status, mapped to codes by the API's one handler (see
:mod:`bump.service`)."""

from __future__ import annotations

from ingest.errors import BumpError


class ServiceError(BumpError):
    code = "service_error"


class AuthError(ServiceError):
    code = "unauthorized"


class ForbiddenError(ServiceError):
    code = "forbidden"


class NotFoundError(ServiceError, LookupError):
    code = "not_found"


class ConflictError(ServiceError):
    code = "conflict"


class PayloadTooLargeError(ServiceError):
    code = "too_large"


class UnsupportedMediaError(ServiceError):
    code = "unsupported_media_type"


class BadRequestError(ServiceError, ValueError):
    code = "bad_request"


class BusyError(ServiceError):
    code = "busy"


class RateLimitedError(ServiceError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s
