"""Bounds every backend holds: the one place that says how large a stored number may be."""

from __future__ import annotations

from typing import Final

MAX_INT64: Final = (1 << 63) - 1
"""The largest order-id, stream version, event-time, position or count any backend stores: a
signed 64-bit number (SQL BIGINT, Cassandra bigint, BSON int64, Redis integers)."""
