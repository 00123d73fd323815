"""The app's frame: health, OpenAPI and docs, JSON errors with stable codes, the body size limit."""

from __future__ import annotations

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
    with TestClient(create_app(mem, max_body_bytes=100)) as client:
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
