"""YAML as the project reads it: safe, and without aliases, so a small file stays a small value.

`yaml.safe_load` resolves aliases (`*name`) by sharing the anchored node, so a few hundred bytes
of nested aliases ("billion laughs") describe billions of nodes: harmless until something walks
or prints the value, then memory runs out. No file the project reads needs an alias, so any is
refused where it stands, and so is a document of more than `MAX_NODES` nodes.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 100_000
"""Nodes in one document: far above any mapping, rules or config file."""


class YamlError(ValueError):
    """A document this loader refuses (or cannot parse); the message gives line and column."""


class _Loader(yaml.SafeLoader):
    nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not allowed in this file; write the value out",
                mark,
            )
        self.nodes += 1
        if self.nodes > MAX_NODES:
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, f"more than {MAX_NODES} values in one document", mark
            )
        return super().compose_node(parent, index)


def load(text: str) -> Any:
    """The one document in `text` (None if empty); YamlError on bad YAML or an alias."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise YamlError(_one_line(exc)) from None
    finally:
        loader.dispose()


def _one_line(exc: yaml.YAMLError) -> str:
    """PyYAML's message (several lines, with a snippet of the text) as one line: where, what."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return " ".join(str(exc).split())
    mark = exc.problem_mark or exc.context_mark
    what = "; ".join(str(p) for p in (exc.context, exc.problem) if p)
    return f"line {mark.line + 1}, column {mark.column + 1}: {what}" if mark else what
