"""Tool arguments as an agent sends them, parsed without coercion, every mistake a Violation.

The SDK would answer a malformed call with pydantic's own text (and a link), stop at the
schema, and hide any model-rule problem behind it. Here arguments are validated strictly
(JSON mode: no "5" for 5, no "true" for true) and each error becomes the same structured
violation the model rules produce (field, rule, message, value, allowed, fix), so one
answer can list every problem in a call. What is valid on its own is kept, so the model
rules can still be checked on it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from .catalog import get_model
from .constraints import Violation

M = TypeVar("M", bound=BaseModel)

_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
_NUMBER_WITH_UNIT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z% ]*)\s*$")
_SHOWN = 120  # characters of a refused value echoed back


@dataclass(slots=True)
class ParsedArguments(Generic[M]):
    """The arguments, when they are all valid; else the problems and what was valid on its own."""

    args: M | None
    valid: dict[str, Any] = field(default_factory=dict)  # top-level arguments with no problem
    violations: list[Violation] = field(default_factory=list)

    @property
    def bad_fields(self) -> set[str]:
        return {_top(v.field) for v in self.violations}


def parse_arguments(model: type[M], raw: Any) -> ParsedArguments[M]:
    """Validate ``raw`` (the call's arguments, as decoded from JSON) against ``model``."""
    if not isinstance(raw, Mapping):
        return ParsedArguments(None, {}, [Violation("$", "type", "The arguments must be a JSON object.",
                                                    "Send the arguments as an object of name: value.")])  # fmt: skip
    values = _model_names({str(k): _decode_json_text(model, str(k), v) for k, v in raw.items()})
    try:
        return ParsedArguments(model.model_validate_json(json.dumps(values), strict=True), values, [])
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    except (TypeError, ValueError) as exc:  # not JSON-serialisable: cannot come from a JSON-RPC call
        return ParsedArguments(None, {}, [Violation("$", "type", f"The arguments are not JSON ({exc}).",
                                                    "Send JSON values only.")])  # fmt: skip
    violations = [_violation(model, e) for e in errors]
    bad = {_top(v.field) for v in violations}
    return ParsedArguments(None, {k: v for k, v in values.items() if k not in bad}, violations)


def _model_names(value: Any) -> Any:
    """Every ``model`` value that names a known model, as the alias the schema lists: its full id and
    its other aliases name it as surely (clips of a storyboard have a model of their own too)."""
    if isinstance(value, dict):
        out = {k: _model_names(v) for k, v in value.items()}
        if isinstance(out.get("model"), str) and (spec := get_model(out["model"])) is not None:
            out["model"] = spec.aliases[0]
        return out
    if isinstance(value, list):
        return [_model_names(v) for v in value]
    return value


def without(values: Any, paths: list[str]) -> Any:
    """A copy of the arguments with the values at these paths (``clips[1].duration``) left out: what
    remains can still be checked against the model rules, so a call's problems come back together."""
    import copy

    out = copy.deepcopy(values)
    for path in paths:
        steps = [int(s) if s.isdigit() else s for s in re.findall(r"[^.\[\]]+", path)]
        node = out
        for step in steps[:-1]:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        if isinstance(node, dict) and steps and isinstance(steps[-1], str):
            node.pop(steps[-1], None)
    return out


def _decode_json_text(model: type[BaseModel], name: str, value: Any) -> Any:
    """A list or object sent as JSON text, decoded. Some clients (Claude Desktop among them) send
    structured arguments that way; the decoded value is the very one they meant, so this changes
    nothing the agent wrote. Any other string stays a string, and is refused where a list belongs."""
    info = model.model_fields.get(name)
    if info is None or not isinstance(value, str) or not value.lstrip().startswith(("[", "{")):
        return value
    if "list[" not in str(info.annotation) and "Element" not in str(info.annotation):
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, list | dict) else value


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for step in loc:
        if isinstance(step, int):
            out += f"[{step}]"
        elif "[" in str(step) or "-" in str(step):
            continue  # a union branch label pydantic adds (e.g. "literal['a']", "function-after[...]")
        else:
            out += ("." if out else "") + str(step)
    return out or "$"


def _top(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _shown(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _SHOWN:
        return value[:_SHOWN] + f"... ({len(value)} characters)"
    if isinstance(value, list | dict) and len(json.dumps(value, default=str)) > _SHOWN:
        return f"<{type(value).__name__} of {len(value)} items>"
    return value


def closest(value: Any, choices: list[str]) -> str | None:
    if not isinstance(value, str) or not choices:
        return None
    squeezed = {re.sub(r"[^a-z0-9]", "", c.lower()): c for c in choices}
    same = squeezed.get(re.sub(r"[^a-z0-9]", "", value.lower()))
    if same is not None:
        return same
    match = difflib.get_close_matches(value.lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
    return next((c for c in choices if match and c.lower() == match[0]), None)


def _number_in(value: Any) -> tuple[str, str] | None:
    """'5s' -> ('5', 's'); a bare number in a string -> (it, '')."""
    if isinstance(value, str):
        match = _NUMBER_WITH_UNIT.match(value)
        if match:
            return match[1], match[2].strip()
    return None


def _violation(model: type[BaseModel], error: Mapping[str, Any]) -> Violation:
    kind: str = error["type"]
    where = _path(tuple(error["loc"]))
    value = error.get("input")
    ctx = error.get("ctx") or {}
    shown = _shown(value)

    def v(rule: str, message: str, fix: str, allowed: Any = None) -> Violation:
        return Violation(where, rule, message, fix, value=shown, allowed=allowed)

    if kind == "extra_forbidden":
        known = _known_names(model, error["loc"][:-1])
        name = str(error["loc"][-1])
        if len(error["loc"]) > 1 and name in model.model_fields:
            return Violation(where, "unknown_argument", f"'{name}' is not set here, but once for the whole call.",
                             f"Remove '{where}' and set '{name}' at the top level.", allowed=known)  # fmt: skip
        guess = closest(name, known)
        return Violation(where, "unknown_argument", f"'{where}' is not an argument of this tool.",
                         (f"Did you mean '{guess}'? " if guess else "") + f"Remove '{where}'"
                         + (f" or rename it to '{guess}'." if guess else "; the allowed names are listed."),
                         allowed=known)  # fmt: skip
    if kind == "missing":
        return Violation(where, "required", f"'{where}' is required.", f"Add '{where}'.")
    if kind == "literal_error":
        allowed = _QUOTED.findall(str(ctx.get("expected", "")))
        guess = closest(value, allowed)
        return v("allowed_values", f"{json.dumps(shown)} is not one of the accepted values.",
                 f"Use '{guess}'." if guess else f"Use one of: {', '.join(allowed)}.", allowed)  # fmt: skip
    if kind in ("int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"):
        number = _number_in(value)
        integer = kind.startswith("int")
        if isinstance(value, float) and integer and value.is_integer():
            return v("type", f"{value} is not an integer.", f"Use the integer {int(value)}.")
        if number is not None:
            digits, unit = number
            fix = f"Use the {'integer' if integer else 'number'} {digits}" + (
                f" (no unit: the unit is already {_unit(model, where)})" if unit else " (a number, not a string)"
            ) + "."
            return v("type", f"{json.dumps(shown)} is a string, not a{'n integer' if integer else ' number'}.", fix)
        return v("type", f"{json.dumps(shown)} is not a{'n integer' if integer else ' number'}.",
                 f"Use a{'n integer' if integer else ' number'}" + (f" ({_unit(model, where)})" if _unit(model, where) else "") + ".")  # fmt: skip
    if kind in ("bool_type", "bool_parsing"):
        truth = str(value).strip().lower() in ("true", "yes", "1", "on")
        return v("type", f"{json.dumps(shown)} is not a boolean.", f"Use {'true' if truth else 'false'} (a JSON boolean, not a string).")
    if kind == "string_type":
        return v("type", f"{json.dumps(shown, default=str)} is not a string.", f"Use a string, e.g. \"{value}\"." if isinstance(value, int | float) else "Use a string.")
    if kind == "list_type":
        example = json.dumps([value]) if isinstance(value, str) and len(value) <= _SHOWN else "[...]"
        return v("type", "A list is expected here, not a single value.", f"Use a list, e.g. {example}.")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        known = _known_names(model, error["loc"])
        return v("type", "An object is expected here.", "Use an object" + (f" with: {', '.join(known)}" if known else "") + ".")
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        length = len(value) if isinstance(value, str) else "?"
        return v("max_length", f"Too long: {length} characters, at most {limit} allowed.",
                 f"Shorten '{where}' to at most {limit} characters.", {"max_length": limit})  # fmt: skip
    if kind == "string_too_short":
        limit = ctx.get("min_length")
        return v("min_length", f"Too short: at least {limit} characters needed.",
                 f"Give '{where}' at least {limit} characters" + (", or leave it out" if limit else "") + ".",
                 {"min_length": limit})  # fmt: skip
    if kind == "too_long":
        limit = ctx.get("max_length")
        return v("max_items", f"Too many items: {ctx.get('actual_length', '?')}, at most {limit} allowed.",
                 f"Give at most {limit} items in '{where}'.", {"max_items": limit})  # fmt: skip
    if kind == "too_short":
        limit = ctx.get("min_length")
        return v("min_items", f"Too few items: at least {limit} needed.",
                 f"Give at least {limit} item(s) in '{where}', or leave it out.", {"min_items": limit})  # fmt: skip
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), None)
        low = kind.startswith("greater")
        strict = kind in ("greater_than", "less_than")
        relation = ("more than" if strict else "at least") if low else ("less than" if strict else "at most")
        allowed = {"min" if low else "max": bound, "exclusive": strict} if strict else {"min" if low else "max": bound}
        return v("out_of_range", f"{json.dumps(shown)} is out of range: it must be {relation} {bound}.",
                 f"Use a value {relation} {bound}.", allowed)  # fmt: skip
    if kind == "value_error":
        message = str(ctx.get("error") or error.get("msg", "")).removeprefix("Value error, ")
        return v("invalid", message, message if "Use " in message else f"Fix '{where}': {message}")
    return v(kind, str(error.get("msg", "Invalid value.")), f"Give '{where}' a value of the type its schema states.")


def _unit(model: type[BaseModel], where: str) -> str:
    name = where.rsplit(".", 1)[-1].split("[")[0]
    return "seconds" if name in ("duration", "timeout_seconds", "ttl", "source_duration") or name.endswith("_seconds") else (
        "US dollars" if name.endswith("_usd") else "")  # fmt: skip


def _known_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The argument names at a location in the model (top level, or inside a nested object)."""
    current: Any = model
    for step in loc:
        if isinstance(step, int) or current is None:
            continue
        info = current.model_fields.get(step) if isinstance(current, type) and issubclass(current, BaseModel) else None
        current = _model_in(info.annotation) if info is not None else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
