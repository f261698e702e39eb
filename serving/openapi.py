"""The OpenAPI spec the service serves at /docs.json; `python -m flushcast.service` rewrites the
committed copy, `serving/openapi.json`, from the service as shipped (with live operation).

It is BentoML's spec of the service amended to say what the service really answers. Request
and response bodies are the pydantic models' own JSON Schemas, in OpenAPI 3.1 (BentoML's 3.0
rendering drops `null` from optional fields, and the models declare which fields go together);
every 4xx body is `ErrorBody` (BentoML documents `detail` as a string); POST bodies can be
refused with 408, 413 and 415 before they are parsed; `/report` answers bad queries with 400
(not FastAPI's 422) and 503 without market data; every answer carries `X-Request-ID`. A test
holds the served spec equal to the committed one, so a changed request or response model (or a
new feature) is a visible diff in review.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from flushcast.serving import SPEC
from flushcast.serving.errors import HEADER, ErrorBody

REF = "#/components/schemas/{model}"
JSON = "application/json"
ERROR = {JSON: {"schema": {"$ref": REF.format(model="ErrorBody")}}}
BEFORE_PARSING = {
    "408": "The body did not arrive within the read timeout.",
    "413": "The body is larger than the service accepts.",
    "415": "The body is not JSON.",
}
UNUSED = ("InvalidArgument", "HTTPValidationError", "ValidationError")
NULL = {"type": "null"}
DESCRIPTION = """Calibrated probabilities of a leverage flush (a liquidation cascade) per horizon,
with the risk band, the likely direction (long flush or short squeeze) and the exact reasons.

Send a symbol's recent bars (at least `bars_needed` of the model's bar size, `GET /model`) to
`/predict`, or a ready feature row; `/explain` gives every input's contribution, `/report` the
trader page. With `--live` the service keeps its own market state: `/risk` answers from it.
Bad input is answered with 400 naming the field (`bars[17].high`). The project's README and
`serving/README.md` say more."""
TAGS = [
    {"name": "Service APIs", "description": "Predictions, explanations, the model and its report."},
    {"name": "Infrastructure", "description": "Liveness, readiness and Prometheus metrics."},
    {
        "name": "Live operation",
        "description": "Risk by symbol, alerts, reloads and monitoring (`flushcast serve --live`).",
    },
]
SUMMARIES = {
    "/predict": "Flush probability, band, direction and top reasons for one symbol",
    "/predict_batch": "Predictions for many series, or for a feature table",
    "/explain": "Every input's contribution to one prediction, per horizon",
}
"""Summaries of BentoML's API routes (FastAPI's routes take theirs from the function name)."""


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": ERROR}


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    """`model`'s JSON Schema, its nested models moved into the spec's components."""
    schema = model.model_json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    return schema


def amend(spec: dict[str, Any], bodies: dict[str, tuple[type[BaseModel], type[BaseModel]]]):
    """BentoML's generated spec made to say what the service answers (see the module doc);
    `bodies` maps each API route to its request and response models."""
    spec = copy.deepcopy(spec)
    spec["openapi"] = "3.1.0"
    spec["info"] = {"title": "flushcast", "version": _version(), "description": DESCRIPTION}
    spec["tags"] = TAGS
    schemas = spec["components"]["schemas"]
    schemas["ErrorBody"] = _schema(ErrorBody, schemas)
    for name in UNUSED:
        schemas.pop(name, None)
    for route, (request, response) in bodies.items():
        operation = spec["paths"][route]["post"]
        operation["summary"] = SUMMARIES[route]
        operation["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": _schema(request, schemas)}},
        }
        operation["responses"]["200"]["content"][JSON]["schema"] = _schema(response, schemas)
    for route, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            responses.pop("422", None)
            if method == "post":
                responses["400"] = _error("The request is malformed or cannot be answered.")
                responses.update({code: _error(text) for code, text in BEFORE_PARSING.items()})
            if route == "/report":
                responses["400"] = _error("Unknown symbol or venue, or a bad `at` time.")
                responses["503"] = _error("The service has no market data to report from.")
            for response in responses.values():
                response.setdefault("headers", {})[HEADER] = {
                    "description": "The request's id, as in the server log.",
                    "schema": {"type": "string"},
                }
    return spec


def _version() -> str:
    """The installed flushcast's version (pyproject.toml)."""
    from importlib.metadata import version

    return version("flushcast")


@functools.cache
def spec(service: Any) -> dict[str, Any]:
    """The spec of BentoML service `service` as served (needs no model: it is generated from
    the service definition)."""
    bodies = {api.route: (api.input_spec, api.output_spec) for api in service.apis.values()}
    return amend(json.loads(json.dumps(service.openapi_spec.asdict())), bodies)


def for_swagger_ui(document: dict[str, Any]) -> dict[str, Any]:
    """The spec in the OpenAPI 3.0 dialect the packaged Swagger UI (4.x) renders: a null
    alternative becomes `nullable`, numeric exclusive bounds become 3.0's boolean ones, schema
    `examples` lists become one `example`. The docs page shows this; `/docs.json` stays 3.1."""

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        options = node.get("anyOf")
        if isinstance(options, list) and NULL in options:
            rest = [option for option in options if option != NULL]
            node = {key: value for key, value in node.items() if key != "anyOf"}
            node.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
            node["nullable"] = True
        if node == NULL:
            return {"nullable": True, "enum": [None]}
        node = {key: convert(value) for key, value in node.items()}
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
                node[limit] = node.pop(bound)
                node[bound] = True
        if isinstance(node.get("examples"), list) and "type" in node and node["examples"]:
            node["example"] = node.pop("examples")[0]
        return node

    converted = convert(copy.deepcopy(document))
    converted["openapi"] = "3.0.3"
    return converted


def write(service: Any, path: Path = SPEC) -> Path:
    path.write_text(json.dumps(spec(service), indent=1, sort_keys=True) + "\n")
    return path
