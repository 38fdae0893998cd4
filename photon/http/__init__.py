"""Photon's HTTP API (starlette, served by uvicorn)."""

from .app import create_app
from .auth import require_admin
from .errors import RequestError, error_response, json_response
from .params import Param, accepts

__all__ = ["Param", "RequestError", "accepts", "create_app", "error_response", "json_response", "require_admin"]
