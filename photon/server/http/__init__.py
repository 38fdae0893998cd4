"""Photon's HTTP API (starlette, served by uvicorn)."""

from photon.server.http.app import create_app
from photon.server.http.auth import require_admin
from photon.server.http.errors import RequestError, error_response, json_response
from photon.server.http.params import Param, accepts

__all__ = ["Param", "RequestError", "accepts", "create_app", "error_response", "json_response", "require_admin"]
