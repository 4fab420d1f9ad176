"""A call's arguments checked against an upstream's input schema, in bounded time.

The schema is the upstream's, so its regular expressions are too: a backtracking ``pattern``
such as ``^(a|a)+$`` with a 35-character argument would hold the proxy's event loop (and its
signal handlers) for hours under Python's ``re``. Every regular expression of the schema
(``pattern``, the keys of ``patternProperties``, and through them ``additionalProperties``) is
run here by the ``regex`` module with a time limit shared by the whole call
(``MCP_GUARD_PATTERN_SECONDS``, 0.1 s of matching by default); a call whose check runs out of
it is refused (fail closed): ``TooSlow``. ``unevaluatedProperties`` beside a
``patternProperties`` anywhere in the schema would run ``re`` inside jsonschema: it is left to
the upstream, as a schema the proxy cannot read is.
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import regex

from odoo_mcp_guard.settings import env_number


@functools.cache
def pattern_seconds() -> float:
    """``MCP_GUARD_PATTERN_SECONDS``: a finite number of seconds above 0, up to 60 (default
    0.1); anything else is a SettingError (one line), never a limit that cannot hold (nan,
    inf, a negative one)."""
    return env_number("MCP_GUARD_PATTERN_SECONDS", 0.1, low=0.0, high=60.0)


# When the call being checked must be done matching (time.monotonic()).
_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar("pattern_deadline", default=0.0)


class TooSlow(Exception):
    """A regular expression of the schema did not finish within the call's time limit, or
    cannot be run safely (the message says which and where, never the argument's value)."""


def _search(pattern: str, text: str) -> bool:
    left = _DEADLINE.get() - time.monotonic()
    if left <= 0:
        raise TooSlow(f"the pattern {pattern[:80]!r}")
    try:
        return regex.search(pattern, text, timeout=left) is not None
    except TimeoutError:
        raise TooSlow(f"the pattern {pattern[:80]!r}") from None
    except (regex.error, TypeError, ValueError, OverflowError):
        raise TooSlow(f"the pattern {pattern[:80]!r}, which the proxy cannot run") from None


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield jsonschema.ValidationError(f"does not match {pattern[:80]!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _without_patterns(original: Any) -> Any:
    """``additionalProperties`` with the keys ``patternProperties`` matches taken off first
    (by ``_search``): the original then runs no regular expression of its own."""

    def checked(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
        patterns = schema.get("patternProperties") if isinstance(schema, Mapping) else None
        if not patterns or not validator.is_type(instance, "object"):
            yield from original(validator, value, instance, schema)
            return
        rest = {
            key: item
            for key, item in instance.items()
            if not any(_search(pattern, key) for pattern in patterns)
        }
        plain = {k: v for k, v in schema.items() if k != "patternProperties"}
        yield from original(validator, value, rest, plain)

    return checked


def _left_to_the_upstream(*_args: Any) -> Iterator[Any]:
    return iter(())


def bounded_validator(schema: Mapping[str, Any]) -> Any:
    """A validator of ``schema`` whose regular expressions run in bounded time (with
    ``check``), or raises ``jsonschema.exceptions.SchemaError`` for a schema that is not
    one."""
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    keywords = dict(cls.VALIDATORS)
    overrides: dict[str, Any] = {}
    if "pattern" in keywords:
        overrides["pattern"] = _pattern
    if "patternProperties" in keywords:
        overrides["patternProperties"] = _pattern_properties
    if "additionalProperties" in keywords:
        overrides["additionalProperties"] = _without_patterns(keywords["additionalProperties"])
    if "unevaluatedProperties" in keywords and '"patternProperties"' in json.dumps(schema):
        overrides["unevaluatedProperties"] = _left_to_the_upstream
    return jsonschema.validators.extend(cls, overrides)(schema)


def first_error(validator: Any, arguments: Any) -> Any:
    """The best error of ``arguments`` (None when they fit); ``TooSlow`` when the check ran
    out of its time (``pattern_seconds``)."""
    token = _DEADLINE.set(time.monotonic() + pattern_seconds())
    try:
        return jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    finally:
        _DEADLINE.reset(token)
