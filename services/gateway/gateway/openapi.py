"""The OpenAPI document, generated from the pydantic models on each route (spectree)."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, jsonify
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import SecureType

from .errors import error_response

# Security requirement of routes that need a signed-in caller.
BEARER: dict[str, list[str]] = {"bearer": []}


def _before(_req: Any, _resp: Any, error: Any, _instance: Any, *_rest: Any) -> None:
    """Turn spectree's validation failure into our error shape (422), naming fields, not values."""
    if error is None:
        return
    problems = []
    for item in error.errors():
        location = ".".join(str(p) for p in item.get("loc", ()) if p != "__root__")
        problems.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    abort(error_response(422, "invalid", "; ".join(problems)[:1000]))


spec = SpecTree(
    "flask",
    title="Kaseum Customer Portal API",
    version="1.0.0",
    # spectree leaves out routes under its own path, so it serves under /apidoc and
    # /api/openapi.json (API.md) is added by register() below.
    path="apidoc",
    filename="openapi.json",
    page_templates={},
    before=_before,
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer"))],
)


def takes_json(view: object) -> bool:
    """Whether a route declares a JSON body (routes without one accept an empty POST)."""
    if view is None:
        return True  # unknown route: let routing answer 404/405
    metadata = spec.get_function_metadata(view)  # type: ignore[arg-type]
    return metadata is None or metadata.json is not None


# Routes documented by hand: spectree's response validation reads a whole Response body, which would
# hold a streamed download (a rights export ZIP) in memory; such a route skips it and is listed here.
STREAMED: dict[str, dict[str, dict[str, Any]]] = {}


def streamed(path: str, method: str, summary: str, media_type: str, errors: tuple[int, ...]) -> None:
    """Document a streaming route (OpenAPI path syntax, e.g. /api/v1/x/{id}) in /api/openapi.json."""
    STREAMED.setdefault(path, {})[method.lower()] = {"summary": summary, "media_type": media_type,
                                                     "errors": errors}


def _streamed_operation(path: str, info: dict[str, Any], error_schema: str) -> dict[str, Any]:
    error = {"description": "error", "content": {"application/json": {"schema": {"$ref": error_schema}}}}
    return {"summary": info["summary"], "tags": ["rights"], "security": [BEARER],
            "parameters": [{"name": part.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
                           for part in path.split("/") if part.startswith("{")],
            "responses": {"200": {"description": info["summary"], "content": {info["media_type"]: {}}},
                          **{str(code): error for code in info["errors"]}}}


def register(app: Flask) -> None:
    spec.register(app)

    @app.get("/api/openapi.json")
    def openapi_document() -> Response:
        document = dict(spec.spec)
        schemas = document.get("components", {}).get("schemas", {})
        error_schema = "#/components/schemas/" + next((k for k in schemas if k.startswith("ErrorOut")), "ErrorOut")
        paths = dict(document.get("paths", {}))
        for path, methods in STREAMED.items():
            paths[path] = {**paths.get(path, {}),
                           **{m: _streamed_operation(path, info, error_schema) for m, info in methods.items()}}
        document["paths"] = paths
        return jsonify(document)
