"""The committed OpenAPI spec: `python -m serving.openapi` rewrites `serving/openapi.json`.

The spec is what the service serves at /docs.json, generated from the pydantic models and the
feature registry; a test fails when the two drift, so a changed request or response model (or a
new feature) is a visible diff in review.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC = Path(__file__).with_name("openapi.json")


def spec() -> dict[str, Any]:
    """The spec as served (needs no model: it is generated from the service definition)."""
    from serving.service import Flushcast

    return json.loads(json.dumps(Flushcast.openapi_spec.asdict()))


def write(path: Path = SPEC) -> Path:
    path.write_text(json.dumps(spec(), indent=1, sort_keys=True) + "\n")
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
