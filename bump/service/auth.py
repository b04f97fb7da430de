"""Tokens and roles: random tokens stored hashed and compared in constant time, devices registered, the checks
of what each role may do."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bump.service.errors import AuthError, BadRequestError, ConflictError, ForbiddenError, NotFoundError
from bump.store import Store

ROLES = ("device", "crew", "admin")
TOKEN_PREFIX_CHARS = 8



@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, the device of a device token, and the token's id and label."""

    role: str                          # "public", "device", "crew" or "admin"
    device_id: str | None = None
    token_id: int | None = None
    label: str | None = None

    @property
    def is_crew(self) -> bool:
        return self.role in ("crew", "admin")

    @property
    def actor(self) -> str:
        """The name recorded in a defect's history."""
        return self.label or f"{self.role}-token-{self.token_id}"


PUBLIC = Principal("public")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """32 random bytes, URL-safe base64, never starting with '-' (a command line would read it as an option)."""
    while (token := secrets.token_urlsafe(32)).startswith("-"):      # 1 in 64 tokens: drawn again
        pass
    return token


def create_token(store: Store, role: str, *, device_id: str | None = None, label: str | None = None,
                 clock: Callable[[], float] = time.time) -> tuple[str, int]:
    """A new random token (32 bytes, URL-safe) of ``role``; only its sha256 is stored. Returns (token, id)."""
    if role not in ROLES:
        raise BadRequestError(f"role must be one of {', '.join(ROLES)}, got {role!r}", field="role")
    if role == "device" and not device_id:
        raise BadRequestError("a device token needs a device id", field="device_id")
    token = new_token()
    token_id = store.add_token(prefix=token[:TOKEN_PREFIX_CHARS], token_sha256=token_digest(token), role=role,
                               device_id=device_id, label=label, created_at_s=clock())
    return token, token_id


def register_device(store: Store, *, allowed: bool = True, clock: Callable[[], float] = time.time
                    ) -> dict[str, str]:
    """A new phone: a fresh device id and its device token (shown once). ``allowed``: the server's policy."""
    if not allowed:
        raise ForbiddenError("this server does not register phones itself; ask its operator for a device token",
                             field="device_registration")
    device_id = f"dev-{secrets.token_hex(8)}"
    token, _ = create_token(store, "device", device_id=device_id, label=device_id, clock=clock)
    return {"device_id": device_id, "token": token}


def authenticate(store: Store, token: str) -> Principal:
    """The principal of a bearer token; :class:`AuthError` when it is unknown or revoked. The stored hashes are
    compared with :func:`hmac.compare_digest` (constant time), all candidates of the prefix every time."""
    how = ("register a phone with POST /v1/devices, or ask an admin for a crew token (bump token create)")
    if not (20 <= len(token) <= 200) or not token.isascii():
        raise AuthError(f"the bearer token is malformed; {how}", field="Authorization")
    digest = token_digest(token)
    found = None
    for row in store.tokens_with_prefix(token[:TOKEN_PREFIX_CHARS]):
        if hmac.compare_digest(row["token_sha256"], digest):
            found = row
    if found is None:
        raise AuthError(f"unknown token; {how}", field="Authorization")
    if found["revoked_at_s"] is not None:
        raise AuthError(f"this token was revoked; {how}", field="Authorization")
    return Principal(found["role"], found["device_id"], int(found["token_id"]), found["label"])


def revoke_token(store: Store, token_or_prefix: str, *, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Revoke one token named by itself or by a prefix of it (at least 6 characters, matching one live token)."""
    text = token_or_prefix.strip()
    if len(text) < 6:
        raise BadRequestError("give the token or at least its first 6 characters", field="token")
    if len(text) >= 20:                          # a whole token: its hash decides
        digest = token_digest(text)
        match = [r for r in store.tokens_with_prefix(text[:TOKEN_PREFIX_CHARS])
                 if r["revoked_at_s"] is None and hmac.compare_digest(r["token_sha256"], digest)]
    else:                                        # a prefix: only the first TOKEN_PREFIX_CHARS are stored
        head = text[:TOKEN_PREFIX_CHARS]
        match = [r for r in store.list_tokens() if r["revoked_at_s"] is None and r["prefix"].startswith(head)]
    if not match:
        raise NotFoundError(f"no live token starts with {text[:TOKEN_PREFIX_CHARS]!r}; list them with "
                            "`bump token list`", field="token")
    if len(match) > 1:
        raise ConflictError(f"{len(match)} live tokens start with {text!r}; give more characters", field="token")
    store.revoke_tokens([match[0]["token_id"]], clock())
    return {k: match[0][k] for k in ("token_id", "prefix", "role", "device_id", "label")}


def require_device(principal: Principal) -> str:
    """The device id of a device token, else 401/403."""
    if principal.role == "public":
        raise AuthError("uploading needs a device token: register with POST /v1/devices and send "
                        "'Authorization: Bearer TOKEN'", field="Authorization")
    if principal.role != "device" or not principal.device_id:
        raise ForbiddenError(f"a {principal.role} token cannot upload trips; phones upload with their device token "
                             "(POST /v1/devices)", field="Authorization")
    return principal.device_id


def require_crew(principal: Principal, action: str) -> None:
    if principal.role == "public":
        raise AuthError(f"{action} needs a crew token ('Authorization: Bearer TOKEN'; bump token create --role crew)",
                        field="Authorization")
    if not principal.is_crew:
        raise ForbiddenError(f"{action} needs a crew or admin token, not a {principal.role} token",
                             field="Authorization")


def require_read(principal: Principal, public_read: bool) -> None:
    """Defect and map reads: anyone when public read is on, else any token."""
    if principal.role == "public" and not public_read:
        raise AuthError("this server does not publish defects; send a token ('Authorization: Bearer TOKEN')",
                        field="Authorization")
