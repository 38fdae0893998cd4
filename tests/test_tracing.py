"""Tracing: with `otel.endpoint`, a real `photon` server sends OTLP/HTTP spans for requests and appends
to a receiver run here; without it, OpenTelemetry is not even imported."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from photon.client.blocking import PhotonClient

from .live import ServerProcess


class OtlpReceiver:
    """An OTLP/HTTP traces endpoint (protobuf bodies on POST /v1/traces) that keeps the spans."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any, str]] = []  # (service name, span, path)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            receiver.spans.append((attributes.get("service.name", ""), span, self.path))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attributes(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        value = a.value
        out[a.key] = value.int_value if value.HasField("int_value") else value.string_value
    return out


def test_spans_for_requests_and_appends_reach_the_collector(tmp_path: Path) -> None:
    receiver = OtlpReceiver()
    try:
        server = ServerProcess(
            tmp_path,
            [
                "-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0",
                "-otel.endpoint", receiver.url, "-otel.service.name", "photon-under-test",
            ],
        )  # fmt: skip
        try:
            assert f"tracing to {receiver.url}/v1/traces" in server.output()
            with PhotonClient(server.url) as client:
                stored = client.emit([{"stream-name": "s", "event-type": "t", "payload": {}} for _ in range(3)])
            trace_id = "0af7651916cd43dd8448eb211c80319c"
            httpx.get(server.url + "/health/live", headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
        finally:
            assert server.terminate() == 0  # stopping flushes the buffered spans
    finally:
        receiver.close()
    assert receiver.spans, "no span reached the collector"
    assert {service for service, _, _ in receiver.spans} == {"photon-under-test"}
    assert {path for _, _, path in receiver.spans} == {"/v1/traces"}
    by_id = {span.span_id: span for _, span, _ in receiver.spans}
    (append,) = [span for span in by_id.values() if span.name == "photon.append"]
    assert _attributes(append)["photon.events"] == 3
    assert _attributes(append)["photon.order_id.last"] == stored[-1].order_id
    parent = by_id[append.parent_span_id]  # the append is a child of the request's span
    assert parent.name.startswith("POST") and _attributes(parent).get("http.route", "/api/event") == "/api/event"
    followed = [span for span in by_id.values() if span.trace_id.hex() == trace_id]
    assert followed, "the caller's traceparent was not continued"


def test_without_an_endpoint_opentelemetry_is_not_imported(tmp_path: Path) -> None:
    script = (
        "import sys, asyncio\n"
        "from photon.core.config import load_config\n"
        "from photon.server.server import PhotonServer\n"
        f"config = load_config({{'rest.host': '127.0.0.1', 'rest.port': '0', 'events.port': '0',"
        f" 'projections.port': '0', 'parallel.projections': '1', 'sqlite.path': {str(tmp_path / 'p.db')!r}}},"
        " environ={})\n"
        "async def main():\n"
        "    server = PhotonServer(config)\n"
        "    await server.start()\n"
        "    await server.stop()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_an_endpoint_without_the_extra_names_it(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoOtel:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('opentelemetry'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _NoOtel())\n"
    )
    from .live import PHOTON

    result = subprocess.run(
        [PHOTON, "-rest.port", "0", "-events.port", "0", "-otel.endpoint", "http://127.0.0.1:4318"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(hooks), "PHOTON_PROJECTIONS_PORT": "0"},
    )
    assert result.returncode == 2
    assert "pip install 'photon-eventstore[otel]'" in result.stderr and "Traceback" not in result.stderr
