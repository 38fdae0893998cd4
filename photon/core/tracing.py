"""OpenTelemetry tracing, on when `otel.endpoint` is set (and the `otel` extra installed); off and never
imported otherwise.

Spans: one per HTTP request (OpenTelemetry's ASGI instrumentation, which also continues a caller's
`traceparent`), and one per append (`photon.append`, from hand-in to durable acknowledgement, a
child of the request's span), with the number of events and the order-ids stored. They are sent
in batches over OTLP/HTTP (protobuf) to `otel.endpoint`; `otel.service.name` names the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from photon.core.errors import MissingDriver

TRACES_PATH = "/v1/traces"


class Tracing:
    """The tracer provider of one server: wraps its ASGI app, traces its store's appends, flushes at stop."""

    def __init__(self, endpoint: str, service_name: str) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise MissingDriver(
                "otel.endpoint is set, but OpenTelemetry is not installed: pip install 'photon-eventstore[otel]'"
            ) from None
        self.endpoint = traces_url(endpoint)
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=self.endpoint)))
        self.tracer = self.provider.get_tracer("photon")

    def wrap(self, app: Any) -> Any:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return OpenTelemetryMiddleware(app, tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Send the spans still buffered, then stop."""
        self.provider.shutdown()


def traces_url(endpoint: str) -> str:
    """`otel.endpoint` as the OTLP/HTTP traces URL: a bare collector address gets `/v1/traces`."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        from photon.core.errors import ConfigError

        raise ConfigError(f"otel.endpoint must be an http:// or https:// URL, got {endpoint!r}")
    return endpoint.rstrip("/") + TRACES_PATH if parts.path in ("", "/") else endpoint


def tracing_for(config: Mapping[str, Any]) -> Tracing | None:
    """The server's tracing, or None when `otel.endpoint` is not set (OpenTelemetry is then not imported)."""
    endpoint = config.get("otel.endpoint")
    if not endpoint:
        return None
    return Tracing(str(endpoint), str(config.get("otel.service.name") or config.get("microservice.name") or "photon"))
