"""The backend contract suite, shipped so that a backend written elsewhere can run it.

    import pytest
    from photon.testing import BackendContract

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def store_config(self, tmp_path):
            return {"db.backend": "mine", "mine.path": str(tmp_path / "store")}

Every built-in backend's tests subclass the same class. Running it needs pytest (the `test` extra
installs it); Photon itself never imports this package.
"""

from photon.testing.base import event
from photon.testing.contract import BackendContract

__all__ = ["BackendContract", "event"]
