"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import re
from collections.abc import Callable


class MakemoreError(Exception):
    """A problem with the user's input, arguments or files (not a bug in makemore)."""


class ConfigError(MakemoreError):
    """A setting out of range, raised where the value enters (a config or a function argument).

    The message names the *field* (``TrainConfig.steps: must be at least 1, got 0``); the CLI
    renders the same error with its flags instead (``--steps: must be at least 1, got 0``).

    Args:
        field: the field (or argument) whose value is wrong; None when the message leads
            with something else (a file and line) and names the fields in ``related``.
        problem: what is wrong with it; it may mention the fields in ``related`` by name.
        owner: the config class holding the field (None for a function argument).
        related: other fields the problem mentions, renamed with ``field`` by ``render``.
    """

    def __init__(self, field: str | None, problem: str, *, owner: str | None = None, related: tuple[str, ...] = ()):
        self.field, self.problem, self.owner, self.related = field, problem, owner, related
        super().__init__(self.render(lambda name: name, qualify=True))

    def render(self, name: Callable[[str], str], *, qualify: bool = False) -> str:
        """The message with every field spelled by ``name`` (e.g. a field -> flag mapping).

        Args:
            name: maps a field name to how the reader knows it.
            qualify: prefix the field with its config class (``TrainConfig.steps``).
        Returns:
            ``"<field>: <problem>"`` (or the problem alone when there is no field), one line.
        """
        problem = self.problem
        for other in self.related:
            problem = re.sub(rf"\b{re.escape(other)}\b", name(other), problem)
        if self.field is None:
            return problem
        lead = name(self.field)
        if qualify and self.owner:
            lead = f"{self.owner}.{lead}"
        return f"{lead}: {problem}"
