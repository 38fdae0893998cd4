"""`postgres` (alias `postgresql`): the SQL backend on a PostgreSQL server through psycopg 3.

The same tables and statements as `sqlite` and `sql` (see the `sql` package); this class only
names the server by `postgres.url` and picks the psycopg 3 driver for a plain ``postgresql://``
URL. Everything PostgreSQL-specific (the writer's advisory lock, libpq time-outs) lives in
`sql/postgres.py`, used for the `postgresql` dialect, so `sql` with a PostgreSQL URL behaves the same.
"""

from __future__ import annotations

from photon.core.errors import BackendError
from photon.core.setting import Setting

from .sql import SQLBackend


class PostgresBackend(SQLBackend):
    name = "postgres"
    aliases = ("postgresql",)
    description = "PostgreSQL server (postgres.url) through psycopg 3"
    driver = "psycopg"
    extra = "postgres"
    settings = (
        Setting(
            "postgres.url",
            None,
            "postgres backend: server URL, e.g. postgresql://user:password@host:5432/photon "
            "(the database must exist; its photon_* tables are created on first open).",
            secret=True,
        ),
    )

    def url(self) -> str:
        url = self.config.get("postgres.url")
        if not url:
            raise BackendError("the postgres backend needs postgres.url, e.g. postgresql://user@host:5432/photon")
        return normalize_url(str(url))


def normalize_url(url: str) -> str:
    """A PostgreSQL URL as SQLAlchemy wants it for psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    if url.startswith("postgresql+"):
        return url
    raise BackendError(f"postgres.url must start with postgresql:// (got {url.split('://')[0]}://...)")
