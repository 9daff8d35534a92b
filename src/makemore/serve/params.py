"""Request parameters of the JSON API: checked against the server's limits, then turned into the
library's configs (``SampleConfig``), whose own validation names the JSON field on error.

Every problem is a ``RequestError``: an HTTP status and one line naming the field.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from makemore import options
from makemore.api import Vocab
from makemore.config import ScoreConfig
from makemore.errors import ConfigError, MakemoreError
from makemore.generate.config import SampleConfig, parse_label

try:  # the parser of the re module (private, but stable since Python 3.0; renamed in 3.11)
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse

MAX_BODY = 64 * 1024  # bytes of a request body
MAX_TEXT = 64  # characters of a text field (prefix, suffix, regex, similar_to, ...), of each string of a list
MAX_LIST = 16  # strings in a list field (contains, not_contains, label)
MIN_LENGTH_LIMIT = 64  # min_len, max_len and a scored text: at most max(64, twice the longest training item)
MAX_TRIES = 100_000  # rows drawn by one generate request, at most
TIME_LIMIT = 5.0  # seconds of generation per request, at most
MAX_REGEX_REPEATS = 3  # repetitions (*, +, {m,n}) in a regex, none nested: matching stays polynomial and small
MAX_SEED = 2**64 - 1

# the fields of each endpoint, by their JSON names: SampleConfig's and ScoreConfig's JSON options
GENERATE = options.declared(SampleConfig, options.JSON)
GENERATE_FIELDS = ["run", *(d.json for d in GENERATE)]
SCORE_FIELDS = ["run", "text", *(d.json for d in options.declared(ScoreConfig, options.JSON))]
MAX_N = options.find(SampleConfig, "num").option.server_most  # items per generate request
MAX_POOL = options.find(SampleConfig, "pool").option.server_most  # items generated to rank for similar_to


class RequestError(Exception):
    """A request the server refuses: ``status`` (400, 404, 405, 413, ...) and a one-line message."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, " ".join(str(message).split())[:500]
        super().__init__(self.message)


def bad(message: str) -> RequestError:
    """A 400 Bad Request."""
    return RequestError(400, message)


def render(exc: MakemoreError) -> str:
    """A library error as one line naming the JSON fields (``num`` is ``n``)."""
    if isinstance(exc, ConfigError):
        return exc.render(lambda name: options.json_name(SampleConfig, name))
    return str(exc)


def check_fields(body: dict[str, Any], allowed) -> None:
    """Refuse a field the endpoint does not know (a typo would otherwise be ignored)."""
    unknown = [name for name in body if name not in allowed]
    if unknown:
        raise bad(f"{unknown[0]}: unknown field (fields: {', '.join(allowed)})")


def run_id(value: Any, count: int) -> int:
    """The run a request names: an integer from 0 to ``count - 1`` (a query string gives digits)."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value):
        value = int(value)
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < count):
        raise bad(f"run: must be a run id from 0 to {count - 1}, got {value!r}")
    return value


def length_limit(longest_item: int) -> int:
    """The most characters a run's requests may ask for (min_len, max_len, a scored text)."""
    return max(MIN_LENGTH_LIMIT, 2 * longest_item)


def _check_sizes(values: dict[str, Any], max_length: int) -> None:
    """The server's limits (declared ``server_most``, and ``MAX_TEXT``/``MAX_LIST``), for the values
    of the right type (the config checks the types)."""
    for d in GENERATE:
        value = values.get(d.name)
        most = max_length if d.option.server_most == "length" else d.option.server_most
        if d.kind == "int" and isinstance(value, int) and not isinstance(value, bool) and most is not None:
            if value > most:
                raise bad(f"{d.json}: at most {most} on this server, got {value}")
        elif d.kind == "str" and isinstance(value, str) and len(value) > MAX_TEXT:
            raise bad(f"{d.json}: at most {MAX_TEXT} characters, got {len(value)}")
        elif d.kind == "list" and isinstance(value, (list, str)):
            if len(value) > (MAX_TEXT if isinstance(value, str) else MAX_LIST):
                raise bad(f"{d.json}: at most {MAX_LIST} strings of at most {MAX_TEXT} characters each")
            if isinstance(value, list) and any(isinstance(s, str) and len(s) > MAX_TEXT for s in value):
                raise bad(f"{d.json}: each string has at most {MAX_TEXT} characters")


def check_labels(specs: tuple[str, ...], vocab: Vocab) -> None:
    """Refuse a label the run was not trained on, naming the field ``label``."""
    if specs and not vocab.label_names:
        raise bad("label: this model was trained without labels")
    for spec in specs:
        name, _ = parse_label(spec)
        if name not in vocab.label_names:
            raise bad(f"label: unknown label {name!r} (labels: {', '.join(vocab.label_names)})")


def sample_config(body: dict[str, Any], vocab: Vocab, max_length: int) -> SampleConfig:
    """The ``SampleConfig`` of a generate request (a null field is the default; no seed: a random one).

    Args:
        body: the request's JSON object.
        vocab: the run's vocabulary (labels are checked against it).
        max_length: the run's ``length_limit``.
    Returns:
        The config, with the server's ``max_tries`` and ``time_limit``.
    Raises:
        RequestError: an unknown field, a value over a limit, or one the config refuses.
    """
    check_fields(body, GENERATE_FIELDS)
    values = {d.name: body[d.json] for d in GENERATE if body.get(d.json) is not None}
    if "seed" not in values:
        values["seed"] = secrets.randbelow(2**32)
    _check_sizes(values, max_length)
    try:
        config = SampleConfig(**values, max_tries=MAX_TRIES, time_limit=TIME_LIMIT)
    except ConfigError as exc:
        raise bad(render(exc)) from None
    check_regex(config.regex)
    check_labels(config.label, vocab)
    return config


def _repeats(pattern, inside: bool) -> int:
    """Repetitions in a parsed regex; raises on a repetition or ``|`` inside a repeated group, or a
    backreference (their matching time can grow exponentially with the item's length)."""
    count = 0
    for op, av in pattern:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            many = av[1] > 1
            if many and inside:
                raise bad("regex: a repetition inside a repeated group is not allowed (it can take exponential time)")
            count += many + _repeats(av[2], inside or many)
        elif name == "BRANCH":
            if inside:
                raise bad("regex: '|' inside a repeated group is not allowed (use a character class like [ae])")
            count += sum(_repeats(p, inside) for p in av[1])
        elif name.startswith("GROUPREF"):
            raise bad("regex: backreferences are not allowed")
        elif name == "SUBPATTERN":
            count += _repeats(av[3], inside)
        elif name in ("ASSERT", "ASSERT_NOT"):
            count += _repeats(av[1], inside)
        elif name == "ATOMIC_GROUP":
            count += _repeats(av, inside)
    return count


def check_regex(regex: str) -> None:
    """Refuse a regular expression whose matching could pin the server (see ``MAX_REGEX_REPEATS``).

    A server limit on top of the rules every pattern follows (``SampleConfig`` compiles it, with
    the ``regex`` package, and refuses what does not compile before this runs); matching is
    bounded by the request's time limit in any case.
    """
    if not regex:
        return
    try:
        parsed = sre_parse.parse(regex)
    except (re.error, OverflowError, ValueError, RecursionError) as exc:  # syntax only the regex package reads
        raise bad(f"regex: this server reads the syntax of Python's re only ({' '.join(str(exc).split())})") from None
    if _repeats(parsed, False) > MAX_REGEX_REPEATS:
        raise bad(f"regex: at most {MAX_REGEX_REPEATS} repetitions (*, +, {{m,n}}) on this server")


def score_params(body: dict[str, Any], vocab: Vocab, max_length: int) -> tuple[str, str | None]:
    """The text and label of a score request.

    Raises:
        RequestError: an unknown field, no text, a text too long, or an unknown label.
    """
    check_fields(body, SCORE_FIELDS)
    text, label = body.get("text"), body.get("label")
    if not isinstance(text, str) or not text:
        raise bad(f"text: must be a non-empty string, got {text!r}")
    if len(text) > max_length:
        raise bad(f"text: at most {max_length} characters on this server, got {len(text)}")
    if label is not None:
        if not isinstance(label, str):
            raise bad(f"label: must be a label name or null, got {label!r}")
        if not vocab.label_names:
            raise bad("label: this model was trained without labels")
        if label not in vocab.label_names:
            raise bad(f"label: unknown label {label!r} (labels: {', '.join(vocab.label_names)})")
    return text, label
