"""The server's OpenAPI document is valid, and no request its schemas allow (or nearly allow) makes a
route answer 500, on both backends.

Schemathesis reads the document from the ASGI app, so every documented route is fuzzed, the routes
other modules add included. Hypothesis is bounded (a few examples per route and mode, no deadline, no
shrinking) and derandomized, so the run is short and the same every time.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from agentmem import MemoryManager

EXAMPLES = 6
"""Per route and way of generating (valid input; invalid input; valid input on a user who exists)."""

BOUNDED = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def load(app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_the_openapi_document_is_valid(app: FastAPI) -> None:
    schema = load(app)
    schema.validate()  # against the OpenAPI meta-schema: raises what is wrong
    paths = {result.ok().path for result in schema.get_all_operations()}
    assert {"/v1/users", "/v1/users/{user_id}/sessions", "/v1/users/import"} <= paths


def test_no_request_makes_a_route_answer_500(app: FastAPI, mem: MemoryManager, admin_key: str) -> None:
    mem.profile.update(user_id="sarah", name="Sarah")
    mem.sessions.add("s1", [{"role": "user", "content": "Hello"}], user_id="sarah")
    headers = {"Authorization": f"Bearer {admin_key}"}
    fuzzed = 0
    for result in load(app).get_all_operations():
        operation = result.ok()
        known = {"user_id": "sarah", "session_id": "s1"}
        on_sarah = {name: value for name, value in known.items() if f"{{{name}}}" in operation.path}
        strategies = [
            (GenerationMode.POSITIVE, operation.as_strategy(GenerationMode.POSITIVE)),
            (GenerationMode.NEGATIVE, operation.as_strategy(GenerationMode.NEGATIVE)),
        ]
        if on_sarah:
            on = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=on_sarah)
            strategies.append((GenerationMode.POSITIVE, on))
        for mode, strategy in strategies:

            @BOUNDED
            @given(case=strategy)
            def no_500(case: Any) -> None:
                answer = case.call(headers=headers)
                assert answer.status_code < 500, (
                    f"{case.method} {case.formatted_path}: {answer.status_code} {answer.text}"
                )
                if answer.status_code >= 400:
                    assert answer.json()["error"]["code"]

            try:
                no_500()
            except Unsatisfiable:
                # A route with no parameters and no body has no invalid request to make.
                assert mode is GenerationMode.NEGATIVE, f"no valid request for {operation.path}"
                continue
            fuzzed += 1
    assert fuzzed >= 2 * 10  # every route, both ways: the document did list the routes
