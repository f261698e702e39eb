"""A schemathesis check: a schema-valid request is refused only for what no schema can state.

Some requests that match the spec cannot be answered: bars out of order or too few for the
lookback, a span too long for the bar count, a horizon or symbol the served model or store does
not have. The service refuses those with 400 and detail type `data_error`; every other kind of
400 for a schema-valid request means the spec and the validation disagree.
Loaded by `st run` through `SCHEMATHESIS_HOOKS`.
"""

from __future__ import annotations

import schemathesis

from flushcast.serving.errors import DATA_ERROR


@schemathesis.check
def valid_requests_are_refused_only_for_data(ctx, response, case) -> bool | None:
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code != 400:
        return None
    kinds = {d["type"] for d in response.json()["detail"]}
    if kinds != {DATA_ERROR}:
        raise AssertionError(
            f"a schema-valid request was refused as malformed ({sorted(kinds)}): "
            "the spec and the request validation disagree"
        )
    return None
