"""``POST /v1/devices``: a phone registers and receives its device token (shown once, stored hashed)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import LimiterDep, SettingsDep, StoreDep
from api.routes.common import errors
from api.schemas import DeviceRegistration
from bump import service

router = APIRouter(prefix="/v1/devices", tags=["devices"])


@router.post("", status_code=201, response_model=DeviceRegistration, responses=errors(403, 429))
def register_device(request: Request, store: StoreDep, settings: SettingsDep, limiter: LimiterDep
                    ) -> dict[str, str]:
    """Register a phone: a new device id and its token. Rate limited per client address."""
    client = request.client.host if request.client else "unknown"
    limiter.check(f"register:{client}", settings.device_register_rate_per_minute,
                  max(1, round(settings.device_register_rate_per_minute)), "device registrations from this address")
    return service.register_device(store, allowed=settings.device_registration)
