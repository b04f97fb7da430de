"""api: the HTTP face of bump (FastAPI), thin routes over bump's service functions (bump.service)."""

from api.app import create_app

__all__ = ["create_app"]
