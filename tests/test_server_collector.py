"""The cycle collector in a server process (photon.server.collector), seen in a real `photon` process."""

from __future__ import annotations

import subprocess
import sys

from photon.server.collector import SERVER_GC_THRESHOLD


def test_a_server_process_collects_less_often_and_freezes_its_start_up_heap() -> None:
    # In a process of its own: the settings are process-wide and would change the test run's.
    code = (
        "import gc\n"
        "from photon.server.collector import collect_less, freeze_start_up\n"
        "before = gc.get_threshold()[0]\n"
        "collect_less()\n"
        "kept = [[i] for i in range(1000)]\n"
        "freeze_start_up()\n"
        "print(before, gc.get_threshold()[0], gc.get_freeze_count() >= 1000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["700", str(SERVER_GC_THRESHOLD), "True"]


def test_run_sets_the_collector_before_serving_and_freezes_once_ready() -> None:
    # `run` itself, up to the point where the server is ready (its services replaced by none).
    code = (
        "import gc, asyncio\n"
        "import photon.server.server as server\n"
        "from photon.core.config import load_config\n"
        "seen = []\n"
        "class Quick(server.PhotonServer):\n"
        "    async def serve(self):\n"
        "        self.factories = []\n"
        "        self.request_stop()\n"
        "        await super().serve()\n"
        "        seen.append(self.on_ready is not None)\n"
        "server.PhotonServer = Quick\n"
        "server.run(load_config({'db.backend': 'memory'}, environ={}))\n"
        "print(gc.get_threshold()[0], gc.get_freeze_count() > 0, seen)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(SERVER_GC_THRESHOLD), "True", "[True]"]
