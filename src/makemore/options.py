"""Each user-facing option declared once: on its config dataclass field, with ``option(...)``.

A field's ``Option`` (in ``dataclasses.field(metadata=...)``) carries its help text, its
spellings where they differ from the field's name (CLI flag, JSON name, page label), its
limits, and where it is offered (``surfaces``: the command line, the JSON API, the page's
controls). Everything else is generated from it: the CLI flags (``cli/options.py``), the
fields and limits the web API accepts (``serve/params.py``), the page's form (``page_controls``,
read by ``serve/static/app.js``), the checks each config runs in ``__post_init__`` (``check``),
and the names a ``ConfigError`` is shown with (``flag``, ``json_name``).

This module imports no torch: ``makemore --help`` reads the declarations at once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

from makemore import validation

CLI, JSON, PAGE = "cli", "json", "page"
EVERYWHERE = frozenset((CLI, JSON, PAGE))
KINDS = ("bool", "int", "float", "str", "list")


@dataclasses.dataclass(frozen=True)
class Option:
    """How one config field is offered to users.

    Attributes:
        help: one sentence for ``--help``, the API docs and the page's tooltip.
        flag: the long flag without ``--`` where it is not the field's name with dashes.
        short: a one-letter flag (``-n``), if any.
        json: the JSON field where it is not the field's name.
        label: the page's label where it is not the field's name with spaces.
        metavar: what ``--help`` shows for the value.
        choices: the values allowed (a string field), checked by ``check``.
        what: how an unknown choice is named in the error ("optimizer").
        least, most, above, below: numeric limits, checked by ``check``.
        note: added to the integer error ("(0 = off)").
        surfaces: where the option is offered (``CLI``, ``JSON``, ``PAGE``); empty = internal.
        server_most: the web API's own largest value of a number, tighter than the library's, or
            ``"length"``: at most the run's length limit (``serve/params.length_limit``).
        page_choices: the page fills the control's choices from the run ("labels").
        placeholder: the page control's placeholder text.
        page_default: the page's starting value where it is not the field's default.
        parse: how the CLI reads the value where the type is not enough ("duration").
        checked: False where ``__post_init__`` has its own rule instead of ``check``'s.
    """

    help: str
    flag: str = ""
    short: str = ""
    json: str = ""
    label: str = ""
    metavar: str = ""
    choices: tuple[str, ...] = ()
    what: str = ""
    least: float | None = None
    most: float | None = None
    above: float | None = None
    below: float | None = None
    note: str = ""
    surfaces: frozenset[str] = EVERYWHERE
    server_most: int | str | None = None
    page_choices: str = ""
    placeholder: str = ""
    page_default: Any = None
    parse: str = ""
    checked: bool = True


def option(default: Any = dataclasses.MISSING, help: str = "", **how: Any) -> Any:
    """A dataclass field declared as a user-facing option (see ``Option``).

    Args:
        default: the field's default (a tuple for a list option).
        help: the option's help text.
        **how: the other ``Option`` attributes; ``surfaces`` may be any iterable.
    Returns:
        the ``dataclasses.field`` to assign in the class body.
    """
    if "surfaces" in how:
        how["surfaces"] = frozenset(how["surfaces"])
    return dataclasses.field(default=default, metadata={"option": Option(help, **how)})


@dataclasses.dataclass(frozen=True)
class Declared:
    """A config field and its ``Option``: ``kind`` is one of ``KINDS``, ``optional`` allows None."""

    name: str
    option: Option
    default: Any
    kind: str
    optional: bool

    @property
    def flag(self) -> str:
        return "--" + (self.option.flag or self.name.replace("_", "-"))

    @property
    def json(self) -> str:
        return self.option.json or self.name

    @property
    def label(self) -> str:
        return self.option.label or self.name.replace("_", " ")

    def offered(self, surface: str) -> bool:
        return surface in self.option.surfaces


def _kind(annotation: str) -> tuple[str, bool]:
    """(kind, optional) of a field annotation such as ``int``, ``int | None``, ``tuple[str, ...]``."""
    parts = [p.strip() for p in str(annotation).split("|")]
    optional = "None" in parts
    base = next(p for p in parts if p != "None")
    kind = "list" if base.startswith(("tuple", "list")) else base
    if kind not in KINDS:
        raise TypeError(f"option of unsupported type {annotation!r}")
    return kind, optional


def declared(cls: type, surface: str | None = None) -> list[Declared]:
    """The declared options of a config class (or instance), in field order.

    Args:
        cls: a dataclass whose option fields use ``option(...)``.
        surface: only the options offered there (``CLI``, ``JSON``, ``PAGE``); None = all.
    Returns:
        one ``Declared`` per option field (fields without an ``Option`` are left out).
    """
    out = []
    for f in dataclasses.fields(cls):
        how = f.metadata.get("option")
        if how is None or not f.init:
            continue
        kind, optional = _kind(f.type)
        item = Declared(f.name, how, f.default, kind, optional)
        if surface is None or item.offered(surface):
            out.append(item)
    return out


def find(cls: type, name: str) -> Declared | None:
    """The declared option ``name`` of ``cls``, or None."""
    return next((d for d in declared(cls) if d.name == name), None)


def check(config: Any) -> None:
    """Check every declared field of ``config`` against its kind and limits (``ConfigError``).

    Lists become tuples. Fields declared ``checked=False`` are left to ``__post_init__``.
    """
    for d in declared(config):
        value = getattr(config, d.name)
        how = d.option
        if not how.checked or (d.optional and value is None):
            continue
        if d.kind == "bool":
            validation.flags(config, d.name)
        elif d.kind == "int":
            _check_int(config, d, value)
        elif d.kind == "float":
            validation.number(config, d.name, least=how.least, most=how.most, above=how.above, below=how.below)
        elif d.kind == "str" and how.choices:
            validation.one_of(config, d.name, how.choices, how.what or None)
        elif d.kind == "str":
            validation.text(config, d.name)
        elif d.kind == "list":
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                validation.fail(config, d.name, f"must be a list of strings, got {value!r}")
            setattr(config, d.name, tuple(value))


def _check_int(config: Any, d: Declared, value: Any) -> None:
    how = d.option
    least = -(2**63) if how.least is None else int(how.least)
    if how.most is None:
        validation.integers(config, least, d.name, note=how.note)
    elif not (isinstance(value, int) and not isinstance(value, bool) and least <= value <= how.most):
        validation.fail(config, d.name, f"must be an integer from {least} to {_number(how.most)}, got {value!r}")


def _number(value: float) -> str:
    return str(int(value)) if math.isfinite(value) and value == int(value) else f"{value:g}"


def to_json(config: Any) -> dict[str, Any]:
    """The JSON-offered fields of ``config`` by their JSON names (tuples as lists)."""
    return {d.json: _plain(getattr(config, d.name)) for d in declared(config, JSON)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def from_json(cls: type, body: dict[str, Any]) -> dict[str, Any]:
    """Field values of ``cls`` from a JSON object (JSON names -> field names; null = the default).

    Raises:
        ConfigError: naming a field that ``cls`` does not offer in JSON.
    """
    names = {d.json: d.name for d in declared(cls, JSON)}
    for key in body:
        if key not in names:
            validation.fail(None, key, f"unknown field (fields: {', '.join(names)})")
    return {names[k]: v for k, v in body.items() if v is not None}


def flag(cls: type | None, name: str) -> str:
    """How the command line spells field ``name`` of ``cls`` (the field itself if not a flag)."""
    d = find(cls, name) if cls is not None else None
    return d.flag if d is not None and d.offered(CLI) else name


def json_name(cls: type | None, name: str) -> str:
    """How the JSON API spells field ``name`` of ``cls``."""
    d = find(cls, name) if cls is not None else None
    return d.json if d is not None else name


def page_controls(cls: type, max_text: int | None = None) -> Iterator[dict[str, Any]]:
    """The page's form controls for ``cls``'s page options, as JSON-ready dicts (``app.js`` builds
    one control from each: its id is the JSON name with dashes).

    Args:
        cls: the config class (``SampleConfig``).
        max_text: the server's most characters of a text (and of each string of a list).
    Returns:
        per option: name (JSON), label, help, kind, optional, default (the page's), least and
        most (numbers; ``run_length``: most is the run's ``length_limit``), max_length (texts),
        placeholder, choices, and ``choices_from`` ("labels": the run's labels).
    """
    for d in declared(cls, PAGE):
        how = d.option
        default = how.page_default if how.page_default is not None else d.default
        number = d.kind in ("int", "float")
        yield {
            "name": d.json,
            "label": d.label,
            "help": how.help,
            "kind": d.kind,
            "optional": d.optional,
            "default": _plain(default),
            "least": (how.least if how.least is not None else how.above) if number else None,
            "most": (how.server_most if isinstance(how.server_most, int) else how.most) if number else None,
            "run_length": how.server_most == "length",
            "max_length": max_text if d.kind in ("str", "list") else None,
            "placeholder": how.placeholder,
            "choices": list(how.choices),
            "choices_from": how.page_choices,
        }
