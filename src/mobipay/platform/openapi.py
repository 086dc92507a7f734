"""The problem answers of every operation in the OpenAPI document, from one rule.

FastAPI documents a route's success and a 422 ``HTTPValidationError`` the platform never
sends (its validation errors are 400 problem+json). :func:`document_problems` replaces that
with what a route can really answer, as ``application/problem+json`` with one ``Problem``
schema, derived from the route itself rather than copied onto each:

- 400 always (validation, control characters), 413 when it takes a body;
- 401 when it authenticates (a security scheme, or a signed-request dependency), 404 when
  its path names an object, 409 when it takes an ``Idempotency-Key``, 429 when it is
  rate limited;
- every status of the errors its context defines (the error tree, ``*/errors.py``), and
  for a subscriber's operation also those of the wallet, the ledger and the platform
  (PINs, limits, frozen wallets, partners unavailable), through which its money moves;
- any status the route declares itself with ``responses=`` (the IVR's 403, say); one marked
  ``x-own-shape`` (a foreign protocol's refusal) keeps its declared content beside problem+json.
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from mobipay.kernel.errors import CATALOGUE

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Marks a declared refusal written in another protocol's shape (WeChat Pay's JSON, a page for
#: a browser): documented as declared, with problem+json beside it for the edge's refusals.
OWN_SHAPE = "x-own-shape"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details with the platform's stable code (docs/errors.md)",
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["/errors/insufficient-funds"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "examples": ["INSUFFICIENT_FUNDS"]},
        "detail": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {"type": "array", "description": "Field errors, named as the request sent them", "items": {
            "type": "object", "required": ["field", "code"],
            "properties": {"field": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}}}},
    },
    "additionalProperties": True,
}

#: Dependencies that authenticate a caller without a declared security scheme.
_AUTHENTICATING = frozenset({"signed", "partner", "require_admin", "subscriber", "bearer_token"})
#: Contexts a subscriber's money moves through, whatever the product.
_UNDERNEATH = ("wallet", "ledger", "platform", "kernel")


def _context_statuses() -> dict[str, set[int]]:
    by_context: dict[str, set[int]] = {}
    for cls in CATALOGUE.values():
        context = cls.__module__.split(".")[1]
        if cls.status < 500 or cls.status == 503:  # a 5xx other than "a dependency is down" is a bug
            by_context.setdefault(context, set()).add(cls.status)
    return by_context


def _calls(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield getattr(sub.call, "__name__", "")
        yield from _calls(sub)


def _keyed(operation: dict[str, Any]) -> bool:
    """Whether the operation takes an ``Idempotency-Key`` header."""
    return any(p.get("in") == "header" and p.get("name", "").lower() == "idempotency-key"
               for p in operation.get("parameters", []))


def statuses(route: APIRoute, operation: dict[str, Any], by_context: dict[str, set[int]]) -> set[int]:
    """The problem statuses ``route`` can answer (see the module docstring)."""
    calls = set(_calls(route.dependant))
    found = {400}
    if route.dependant.body_params or "requestBody" in operation or "signed" in calls:
        found.add(413)
    if operation.get("security") or calls & _AUTHENTICATING:
        found.add(401)
    if route.dependant.path_params:
        found.add(404)
    if _keyed(operation):
        found.add(409)
    if "check" in calls:  # api_common.rate_limited
        found.add(429)
    context = route.endpoint.__module__.split(".")[1]
    if context not in ("platform", "kernel"):  # health, metrics: only what the rules above say
        found |= by_context.get(context, set())
    if calls & {"subscriber", "bearer_token"}:
        for underneath in _UNDERNEATH:
            found |= by_context.get(underneath, set())
    return found


def _document_successes(operation: dict[str, Any], responses: dict[str, Any]) -> None:
    """A replay of an Idempotency-Key answers 200 with the first answer's body; a declared
    202 (``PENDING``) carries the body of the 201."""
    created = responses.get("201", {}).get("content")
    if created is None:
        return
    if _keyed(operation) and "200" not in responses:
        responses["200"] = {"description": "A replay of the same Idempotency-Key: the first answer again "
                            "(header Idempotent-Replayed: true)", "content": created}
    for declared in ("200", "202"):
        if declared in responses:
            responses[declared]["content"] = created


def document_problems(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Declare every operation's problem answers in ``schema`` (FastAPI's document), in place."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    by_context = _context_statuses()
    for context in routing.iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not context.include_in_schema:
            continue
        for method in context.methods or ():
            operation = schema["paths"].get(context.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            _document_successes(operation, responses)
            # A status the route declares itself (``responses={403: ...}``) is a problem as well.
            ours = statuses(route, operation, by_context) | {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            if "422" in responses and 422 not in statuses(route, operation, by_context):
                del responses["422"]  # FastAPI's HTTPValidationError: validation answers 400 here
            for status in sorted(ours):
                declared = responses.get(str(status), {})
                problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
                if declared.get(OWN_SHAPE):  # a foreign protocol's refusal, beside the edge's problem+json
                    responses[str(status)] = {**declared, "content": {**declared.get("content", {}), **problem}}
                    continue
                responses[str(status)] = {"description": HTTPStatus(status).phrase, "content": problem}
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema
