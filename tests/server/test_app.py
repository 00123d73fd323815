"""The app's frame: health, OpenAPI and docs, JSON errors with stable codes, the body size limit."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from agentmem import ConfigurationError, MemoryManager
from agentmem.errors import (
    AgentMemError,
    ConflictError,
    ErasedError,
    RateLimitError,
    ScopeError,
    SecretError,
    StoreError,
)
from agentmem.server import create_app
from agentmem.server.errors import not_found, status_of
from agentmem.server.hosts import LOOPBACK_HOSTS, allowed_hosts, host_name
from agentmem.server.keys import ApiKeys
from agentmem.store.migrations import SCHEMA_VERSION

from .conftest import ClientFor


def test_healthz_needs_no_key_and_reports_the_schema_version(client_for: ClientFor, admin_key: str) -> None:
    answer = client_for(None).get("/healthz")  # keys exist (admin_key), and none is sent
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "schema_version": SCHEMA_VERSION}


def test_healthz_is_503_when_the_database_is_gone(mem: MemoryManager) -> None:
    with TestClient(create_app(mem)) as client:
        mem.close()
        answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "store_unavailable"


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "agentmem"
    assert {"/healthz", "/v1/me", "/v1/keys", "/v1/keys/{key_id}"} <= set(spec["paths"])
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_the_docs_page_loads_swagger_ui_from_this_server_not_a_cdn(client: TestClient) -> None:
    page = client.get("/docs").text
    scripts = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "/docs/assets/swagger-ui-bundle.js" in scripts
    assert "/docs/assets/swagger-ui.css" in scripts
    assert all(url.startswith("/") for url in scripts), scripts  # nothing from another host
    assert "cdn" not in page
    for asset in scripts:
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 0
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text


@pytest.mark.parametrize("path", ["/nope", "/v1/nope", "/inspector/nope", "/v2/me"])
def test_an_unknown_route_is_a_json_404(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json() == {"error": {"code": "not_found", "message": "not found"}}


def test_a_wrong_method_is_a_json_405(client: TestClient) -> None:
    answer = client.put("/v1/me")
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "method_not_allowed"


def test_a_body_that_does_not_match_the_schema_is_a_json_422(client: TestClient) -> None:
    answer = client.post("/v1/keys", json={"admin": "very", "label": 5})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert {tuple(d["loc"]) for d in error["details"]} == {("body", "admin"), ("body", "label")}
    malformed = client.post("/v1/keys", content=b"{not json", headers={"content-type": "application/json"})
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (422, "invalid_request")


def test_agentmem_errors_get_their_status_and_code(client: TestClient) -> None:
    nothing = client.post("/v1/keys", json={})  # a key bound to nothing: InvalidInputError
    assert (nothing.status_code, nothing.json()["error"]["code"]) == (422, "invalid_input")
    assert "reach nothing" in nothing.json()["error"]["message"]
    bad_id = client.post("/v1/keys", json={"user_id": " alice"})  # refused where ids enter the server
    assert (bad_id.status_code, bad_id.json()["error"]["code"]) == (422, "invalid_request")
    unknown = client.delete("/v1/keys/k_missing")  # NotFoundError
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ErasedError("gone"), 409, "user_erased"),
        (ConflictError("exists"), 409, "conflict"),
        (SecretError("a key"), 422, "secret_rejected"),
        (ScopeError("bad id"), 422, "invalid_scope"),
        (ConfigurationError("no layer"), 400, "bad_request"),
        (RateLimitError("slow down"), 429, "rate_limited"),
        (StoreError("down"), 503, "store_unavailable"),
    ],
)
def test_the_error_table(error: AgentMemError, status: int, code: str) -> None:
    assert status_of(error) == (status, code)


@pytest.fixture
def raising_app(mem: MemoryManager) -> Iterator[TestClient]:
    app = create_app(mem)
    router = APIRouter()

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    @router.get("/gone")
    def gone() -> None:
        raise not_found("no such thing")

    app.include_router(router, prefix="/test")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_unexpected_error_is_a_generic_json_500(raising_app: TestClient) -> None:
    answer = raising_app.get("/test/boom")
    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": "internal_error", "message": "internal server error"}}
    assert "secret internals" not in answer.text


def test_routes_raise_json_errors_with_the_helpers(raising_app: TestClient) -> None:
    answer = raising_app.get("/test/gone")
    assert answer.status_code == 404
    assert answer.json() == {"error": {"code": "not_found", "message": "no such thing"}}


@pytest.fixture
def small(mem: MemoryManager) -> Iterator[TestClient]:
    with TestClient(create_app(mem, max_body_bytes=100, allowed_hosts=["testserver"])) as client:
        yield client


def test_a_body_over_the_limit_is_413_by_its_declared_length(small: TestClient) -> None:
    answer = small.post("/v1/keys", content=b"x" * 101, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "body_too_large"


def test_a_streamed_body_over_the_limit_is_413_as_it_arrives(small: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(10):
            yield b'{"label": "' + b"x" * 30

    answer = small.post("/v1/keys", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "body_too_large"


def test_a_body_within_the_limit_reaches_the_route(small: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"admin": '
        yield b"true}"

    answer = small.post("/v1/keys", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 201  # open mode: no key yet, served as admin
    assert answer.json()["admin"] is True


def test_create_app_refuses_bad_arguments(mem: MemoryManager) -> None:
    with pytest.raises(ConfigurationError, match="MemoryManager"):
        create_app("sqlite:///x.db")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_body_bytes"):
        create_app(mem, max_body_bytes=0)
    with pytest.raises(ConfigurationError, match="agent_id"):
        create_app(mem, agents={"a": "not an agent"})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="allowed_hosts"):
        create_app(mem, allowed_hosts="example.org")


# ---- open mode: DNS rebinding and cross-site requests --------------------------------------------


@pytest.fixture
def open_client(mem: MemoryManager) -> Iterator[TestClient]:
    """A keyless client of an open-mode app bound to 127.0.0.1:8765 that also answers to app.example."""
    app = create_app(mem, allowed_hosts=["app.example"])
    with TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize("path", ["/v1/users", "/v1/me", "/inspector/", "/inspector/users/alice"])
def test_open_mode_refuses_a_host_it_does_not_answer_to(
    open_client: TestClient, mem: MemoryManager, path: str
) -> None:
    mem.knowledge.add("Likes tea", user_id="alice")
    answer = open_client.get(path, headers={"Host": "rebind.attacker.example:8765"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "host_not_allowed"
    assert "alice" not in answer.text


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8765", "localhost:8765", "LOCALHOST", "[::1]:8765", "app.example", "App.Example:80"]
)
def test_open_mode_answers_the_loopback_names_and_allowed_hosts(open_client: TestClient, host: str) -> None:
    answer = open_client.get("/v1/me", headers={"Host": host})
    assert answer.status_code == 200
    assert answer.json()["admin"] is True


def test_open_mode_refuses_state_changing_requests_from_another_site(
    open_client: TestClient, mem: MemoryManager
) -> None:
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8765"):
        minted = open_client.post("/v1/keys", json={"admin": True}, headers={"Origin": origin})
        assert minted.status_code == 403, origin
        assert minted.json()["error"]["code"] == "cross_origin"
        added = open_client.post(
            "/v1/users/alice/items",
            json={"layer": "knowledge", "text": "x"},
            headers={"Origin": origin},
        )
        assert added.status_code == 403, origin
        retry = open_client.post("/inspector/users/alice/pending/retry", headers={"Origin": origin})
        assert retry.status_code == 403, origin
    assert ApiKeys(mem).list() == []
    assert mem.list_users() == []
    # A read from another site's page is answered: the browser does not let that page see the answer.
    assert open_client.get("/v1/me", headers={"Origin": "http://evil.example"}).status_code == 200


def test_open_mode_serves_its_own_origin_and_clients_that_send_none(open_client: TestClient) -> None:
    own = open_client.post("/v1/keys", json={"user_id": "alice"}, headers={"Origin": "http://127.0.0.1:8765"})
    assert own.status_code == 201  # the key ends open mode
    # A client without an Origin (curl, an SDK) was served the same way before the key existed.


def test_a_keyless_client_without_origin_is_served_in_open_mode(open_client: TestClient) -> None:
    assert open_client.post("/v1/keys", json={"admin": True}).status_code == 201


def test_with_keys_any_host_and_origin_are_served_to_a_valid_key(mem: MemoryManager) -> None:
    key = ApiKeys(mem).create(admin=True).secret
    app = create_app(mem)
    with TestClient(app, base_url="http://memory.internal", headers={"X-API-Key": key}) as client:
        assert client.get("/v1/me").json()["admin"] is True
        made = client.post("/v1/keys", json={"user_id": "bob"}, headers={"Origin": "https://ops.example"})
        assert made.status_code == 201
        keyless = client.get("/v1/me", headers={"X-API-Key": ""})
    assert keyless.status_code == 401


def test_host_names_are_compared_without_port_brackets_or_case() -> None:
    assert host_name("[::1]:8000") == "::1"
    assert host_name("::1") == "::1"
    assert host_name("LocalHost:80") == "localhost"
    assert host_name("example.org") == "example.org"
    assert allowed_hosts(["Box.Example:8000", " "]) == LOOPBACK_HOSTS | {"box.example"}
