"""The SQL backends through SQLAlchemy Core: `sqlite` (the default; alias `h2`), `sql` (any URL)
and, in `photon_backends.postgres`, `postgres`.

- `schema`: the tables and indexes, the store's file format on every dialect;
- `statements`: the SQL they run, compiled once per dialect, and the rows an append writes;
- `reads` and `backend`: the generic backend (`sql`), its reads and its writes;
- `postgres`: PostgreSQL's writer lock (an advisory lock) and connection options;
- `sqlite`: the SQLite backend, with `checkpointing` (its log copied by a thread of its own)
  and `bulk_load` (its fast restore).
"""

from .backend import SQLBackend
from .sqlite import SQLiteBackend

__all__ = ["SQLBackend", "SQLiteBackend"]
