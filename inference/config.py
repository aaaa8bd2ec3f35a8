"""Strict model configs: one dataclass per section of a `config.json`, checked on load.

Every section of a model folder's config (the segmenter's post-processing thresholds, the
tracker's graph, solver and window, the embedding's crop ...) is a frozen dataclass whose
fields carry their default and a `Rule` saying what is allowed. `load_section` builds one
from the JSON object: an unknown key (a misspelling would otherwise be ignored and the
default used silently) or a value of the wrong type or range is a `CTCError` of one line
naming the file, the key and what is allowed, with the closest valid key suggested. The
dataclass is the one place a default lives.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from inference.errors import CTCError

T = TypeVar("T")

#: Keys every model config may hold besides its sections: what the model is and where it
#: came from (written by `inference.models.folder.save_model_folder` and by training).
RECORD_KEYS = ("kind", "format_version", "gnntrack_version", "weights", "training", "validation")


@dataclass(frozen=True)
class Rule:
    """What a config value may be: `allowed` in words, `check` returns it converted or
    raises ValueError/TypeError."""

    allowed: str
    check: Callable[[Any], Any]


class ConfigValueError(ValueError):
    """A value that breaks a rule involving several keys, raised by a section's checks."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key} is {value!r}; allowed: {allowed}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(minimum: int | None = None, maximum: int | None = None) -> Rule:
    """A whole number (JSON integer) within [minimum, maximum]."""

    def check(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError("not an integer")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ValueError("out of range")
        return value

    return Rule("an integer" + _range(minimum, maximum), check)


def number(
    minimum: float | None = None, maximum: float | None = None, *, above: float | None = None
) -> Rule:
    """A finite number within [minimum, maximum] (and > `above`), returned as float."""

    def check(value: object) -> float:
        if not _is_number(value) or not math.isfinite(value):
            raise TypeError("not a number")
        low_ok = (minimum is None or value >= minimum) and (above is None or value > above)
        if not low_ok or (maximum is not None and value > maximum):
            raise ValueError("out of range")
        return float(value)

    words = f" > {above:g}" if above is not None else _range(minimum, maximum)
    return Rule("a number" + words, check)


def _range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" between {minimum:g} and {maximum:g}"
    if minimum is not None:
        return f" >= {minimum:g}"
    if maximum is not None:
        return f" <= {maximum:g}"
    return ""


def flag() -> Rule:
    """true or false (JSON booleans only: "yes" and 1 are refused)."""

    def check(value: object) -> bool:
        if not isinstance(value, bool):
            raise TypeError("not a boolean")
        return value

    return Rule("true or false", check)


def choice(*values: object) -> Rule:
    """One of `values`."""

    def check(value: object) -> object:
        if isinstance(value, bool) or value not in values:
            raise ValueError("not a choice")
        return value

    return Rule("one of " + ", ".join(str(v) for v in values), check)


def text() -> Rule:
    """A string."""

    def check(value: object) -> str:
        if not isinstance(value, str):
            raise TypeError("not a string")
        return value

    return Rule("a string", check)


def mapping() -> Rule:
    """A JSON object (checked further by whoever reads it)."""

    def check(value: object) -> dict:
        if not isinstance(value, dict):
            raise TypeError("not an object")
        return value

    return Rule("an object", check)


def items(item: Rule, length: int | None = None) -> Rule:
    """A JSON list of `length` values (any length when None), each allowed by `item`."""

    def check(value: object) -> list:
        if not isinstance(value, list | tuple):
            raise TypeError("not a list")
        if length is not None and len(value) != length:
            raise ValueError("wrong length")
        return [item.check(v) for v in value]

    count = f"{length} values" if length is not None else "values"
    return Rule(f"a list of {count}, each {item.allowed}", check)


def optional(rule: Rule) -> Rule:
    """null, or a value allowed by `rule`."""
    return Rule(f"null or {rule.allowed}", lambda v: None if v is None else rule.check(v))


def setting(rule: Rule, default: object = MISSING, *, factory: Callable[[], object] | None = None):
    """A dataclass field with its `Rule`; no default makes the key required."""
    if factory is not None:
        return field(default_factory=factory, metadata={"rule": rule})
    return field(default=default, metadata={"rule": rule})


def section(cls: type, *, required: bool = False, nullable: bool = False):
    """A field holding a nested section (a dataclass loaded with `load_section`); a
    `nullable` one may be null (and is None when absent)."""
    metadata = {"section": cls, "nullable": nullable}
    if required:
        return field(metadata=metadata)
    if nullable:
        return field(default=None, metadata=metadata)
    return field(default_factory=cls, metadata=metadata)


def _required(f: Field) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def unknown_key(key: str, known: Iterable[str], source: Path | None) -> CTCError:
    """The error for `key` (a dotted path) whose last part is not one of `known`, with the
    closest known one suggested."""
    known = sorted(known)
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return CTCError(f"unknown key {key}{hint}; allowed: {', '.join(known)}", source)


def value_error(key: str, value: object, allowed: str, source: Path | None) -> CTCError:
    """The error for a value of `key` that is not allowed."""
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return CTCError(f"{key} is {shown}; allowed: {allowed}", source)


def load_section(
    cls: type[T],
    data: object,
    source: Path | None,
    prefix: str = "",
    *,
    ignore: Iterable[str] = (),
) -> T:
    """Build dataclass `cls` from the JSON object `data` (the section at key `prefix` of the
    config file `source`), refusing unknown keys and values its rules do not allow.

    Keys in `ignore` are allowed and left out (records such as `training`).
    """
    where = prefix or "the top level"
    if not isinstance(data, dict):
        raise value_error(prefix or "config", data, f"an object with keys {_keys(cls)}", source)
    known = {f.name: f for f in fields(cls) if f.init}
    ignored = set(ignore)
    for key in data:
        if key not in known and key not in ignored:
            raise unknown_key(_join(prefix, key), [*known, *ignored], source)
    values: dict[str, Any] = {}
    for name, f in known.items():
        key = _join(prefix, name)
        nested = f.metadata.get("section")
        if name not in data:
            if _required(f):
                allowed = f"an object with keys {_keys(nested)}" if nested else _allowed(f)
                raise CTCError(f"{key} is missing; allowed: {allowed}", source)
            continue
        value = data[name]
        if nested is not None:
            if value is None and f.metadata["nullable"]:
                values[name] = None
            else:
                values[name] = load_section(nested, value, source, key)
            continue
        rule: Rule | None = f.metadata.get("rule")
        if rule is None:
            values[name] = value
            continue
        try:
            values[name] = rule.check(value)
        except (TypeError, ValueError):
            raise value_error(key, value, rule.allowed, source) from None
    try:
        return cls(**values)
    except ConfigValueError as exc:
        raise value_error(_join(prefix, exc.key), exc.value, exc.allowed, source) from None
    except (TypeError, ValueError) as exc:
        raise CTCError(f"{where}: {exc}", source) from None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _keys(cls: type | None) -> str:
    if cls is None or not is_dataclass(cls):
        return "..."
    return ", ".join(f.name for f in fields(cls) if f.init)


def _allowed(f: Field) -> str:
    rule = f.metadata.get("rule")
    return rule.allowed if rule is not None else "a value"


def load_model_config(cls: type[T], config: dict[str, Any], source: Path) -> T:
    """The sections of a whole model config (`cls`: its top-level dataclass); the record
    keys (`RECORD_KEYS`) are allowed and not part of the result."""
    return load_section(cls, config, source, ignore=RECORD_KEYS)
