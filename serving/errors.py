"""Bad input, as a 4xx body shaped like BentoML's own schema errors: `error` plus `detail`."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

Loc = tuple[str | int, ...]


def path(loc: Loc) -> str:
    """A JSON path for messages: ("bars", 17, "high") -> "bars[17].high"."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


class InputError(ValueError):
    """A request the model cannot answer; `loc` is the JSON path of the offending field."""

    def __init__(self, message: str, loc: Loc = (), **extra: Any) -> None:
        super().__init__(f"{path(loc)}: {message}" if loc else message)
        self.message = message
        self.loc = loc
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "error": str(self),
            "detail": [{"type": "value_error", "loc": list(self.loc), "msg": self.message}],
            **self.extra,
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=400)
