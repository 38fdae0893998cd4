"""/metrics (Prometheus) and the OpenAPI description."""

from __future__ import annotations

import socket

import httpx
import orjson

from .live import LiveServer, event


def test_metrics_count_appends_and_events(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/event", json=[event(), event(), event()])
    api.post("/api/event", json=event())
    api.post("/api/event", json={"bad": 1})
    with socket.create_connection(("127.0.0.1", live.tcp_port)) as sock:
        sock.sendall(orjson.dumps({"token": live.token()}) + b"\n" + orjson.dumps(event()) + b"\n")
        sock.recv(100)
    text = httpx.get(live.url + "/metrics").text  # no token needed
    assert 'photon_events_appended_total{transport="http"} 4.0' in text
    assert 'photon_events_appended_total{transport="tcp"} 1.0' in text
    assert 'photon_appends_total{outcome="stored",transport="http"} 2.0' in text
    assert 'photon_appends_total{outcome="rejected",transport="http"} 1.0' in text
    assert 'photon_append_seconds_count{transport="http"} 2.0' in text
    assert "photon_last_order_id 5.0" in text


def test_openapi_describes_every_route(live: LiveServer) -> None:
    spec = httpx.get(live.url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in [
        ("/api/ping", "get"),
        ("/api/streams", "get"),
        ("/api/event", "post"),
        ("/api/stream-contents/{stream}", "get"),
        ("/api/event/{stream}/{order_id}", "get"),
        ("/api/stream/{stream}", "delete"),
        ("/api/replay/{stream}", "get"),
        ("/api/subscription/{name}", "get"),
        ("/api/subscription/{name}/ack", "post"),
        ("/auth/token", "get"),
        ("/metrics", "get"),
    ]:
        assert method in paths[path], path
    replay = paths["/api/replay/{stream}"]["get"]
    names = {p["name"] for p in replay["parameters"]}
    assert {"stream", "stream-type", "from", "from-version", "from-time", "to", "event-types", "limit"} <= names
    assert "401" in replay["responses"] and "401" not in paths["/api/ping"]["get"]["responses"]
    assert httpx.get(live.url + "/api-docs").json() == spec


def test_options_and_405_name_every_method_of_the_path(live: LiveServer) -> None:
    # Three routes serve /api/group/{name}; DELETE-only /api/stream/{stream}; no token needed for OPTIONS.
    for path, allowed in [
        ("/api/group/g", "GET, HEAD, PUT, DELETE, OPTIONS"),
        ("/api/stream/orders", "DELETE, OPTIONS"),
        ("/api/projection/p", "GET, HEAD, DELETE, OPTIONS"),
        ("/api/stream-metadata/a/b", "GET, HEAD, PUT, OPTIONS"),
    ]:
        answer = httpx.request("OPTIONS", live.url + path)
        assert (answer.status_code, answer.headers["allow"], answer.content) == (204, allowed, b""), path
    with live.client() as api:
        answer = api.request("PATCH", "/api/group/g")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET, HEAD, PUT, DELETE, OPTIONS"
        assert answer.json() == {"error": "method PATCH not allowed on /api/group/g"}
    assert httpx.request("OPTIONS", live.url + "/no/such/route").status_code == 404


def test_openapi_has_schemas_and_every_status(live: LiveServer) -> None:
    spec = httpx.get(live.url + "/openapi.json").json()
    components = spec["components"]["schemas"]
    assert {"NewEvent", "StoredEvent", "EmitEnvelope", "EventPage", "ErrorAnswer", "JsonValue"} <= set(components)
    emit = spec["paths"]["/api/event"]["post"]
    body = emit["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/NewEvent"} in body
    assert {"$ref": "#/components/schemas/EmitEnvelope"} in body
    assert set(emit["responses"]) == {"200", "400", "401", "409", "410", "413", "503"}
    # /metrics is Prometheus text, not JSON.
    assert list(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    ids = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            ids.append(operation["operationId"])
            responses = operation["responses"]
            if "security" in operation:
                assert {"401", "503"} <= set(responses), (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= set(responses), (method, path)
            for status, answer in responses.items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorAnswer"
                    }
    assert len(ids) == len(set(ids))
    # An unknown query parameter is answered 400, as documented.
    assert "400" in spec["paths"]["/api/streams"]["get"]["responses"]
    with live.client() as api:
        assert api.get("/api/streams", params={"nope": "1"}).status_code == 400


def test_inputs_schemathesis_found_are_refused_with_4xx(live: LiveServer) -> None:
    with live.client() as api:
        answer = api.post("/api/redact", json={"stream-name": {}})  # was a 500
        assert answer.status_code == 400 and answer.json()["field"] == "stream-name"
        answer = api.post("/api/groups", json={"group-name": "g", "start": 1 << 63})  # was stored
        assert answer.status_code == 400 and answer.json()["field"] == "start"
        answer = api.put("/api/stream-metadata/orders", json={"truncate-before": 1 << 63})  # was stored
        assert answer.status_code == 400 and answer.json()["field"] == "truncate-before"
        assert api.get("/api/groups").json()["groups"] == []
