"""Photon's HTTP API (starlette)."""
