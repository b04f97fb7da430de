"""Settings of the HTTP service, from arguments and the environment (prefix ``BUMP_``), read only in `api/` and
the CLI. ``get_settings`` is the FastAPI dependency the routes use; tests override it
(``app.dependency_overrides[get_settings] = lambda: Settings(...)``) or pass settings to ``create_app``.

Example: ``BUMP_DB_PATH=/srv/bump.db BUMP_PUBLIC_READ=false bump serve``.

Which peers may set the client address with X-Forwarded-For is the server's business, not the app's:
``bump serve --forwarded-allow-ips`` (or ``BUMP_FORWARDED_ALLOW_IPS``; default none, the headers are ignored).
Running uvicorn by hand (``uvicorn --factory api.app:create_app``), pass ``--no-proxy-headers`` or the proxies'
``--forwarded-allow-ips``: uvicorn's default trusts 127.0.0.1, so anyone on the host picks their own address.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a deployment may change. Sizes in bytes, rates per minute, distances in metres."""

    model_config = SettingsConfigDict(env_prefix="BUMP_", extra="ignore", frozen=True)

    db_path: Path = Field(Path("build/bump.db"), description="SQLite database (created when missing)")
    max_body_bytes: int = Field(64 * 2**20, ge=1, description="largest upload body on the wire [bytes]")
    max_decompressed_bytes: int = Field(256 * 2**20, ge=1,
                                        description="largest upload after gzip / inside a zip [bytes]")
    upload_rate_per_minute: float = Field(120.0, gt=0, description="uploads per device and minute (token bucket)")
    upload_burst: int = Field(30, ge=1, description="uploads a device may send at once before the rate applies")
    device_register_rate_per_minute: float = Field(10.0, gt=0,
                                                   description="device registrations per client address and minute")
    device_registration: bool = Field(True, description="phones may register themselves (POST /v1/devices); "
                                                         "off: only tokens made with `bump token create`")
    public_read: bool = Field(True, description="defect, map and Open311 reads without a token")
    privacy_trim_m: float = Field(200.0, ge=0, description="no GPS within this distance of a trip's start or end "
                                                            "is exposed [m]")
    privacy_min_devices: int = Field(3, ge=1, description="a defect whose every hit lies that close to its trip's "
                                                          "ends is shown once this many distinct devices hit it "
                                                          "(no one driver's home); withheld before")
    tile_url: str | None = Field(None, description="map tile URL template for the map page (None: plain background)")
    tile_attribution: str | None = Field(None, description="credit line the tile server requires, shown on the map "
                                                           "with its tiles (HTML allowed), e.g. '&copy; "
                                                           "OpenStreetMap contributors'")
    detector_params: Path | None = Field(None, description="JSON file of detector parameters (default: built-in)")
    store_pool_size: int = Field(8, ge=1, description="SQLite connections per process")
    warm_up: bool = Field(True, description="run the detector once per usual phone rate when a worker starts "
                                            "(~0.3 s), so that its first uploads do not pay for one-time caches")
    uploads_at_once: int = Field(1, ge=1, description="uploads a worker process works on at the same time (the "
                                                      "others wait their turn): one per process and core keeps "
                                                      "them from fighting over the GIL and the database's write "
                                                      "lock")


async def get_settings(request: Request) -> Settings:
    """The app's settings (the FastAPI dependency)."""
    return request.app.state.settings
