"""The model families' options as declared in their source, read without importing them.

The parser needs every family's config fields (name, default, ``# comment``) and training
defaults, but ``makemore.models`` imports torch (seconds), and ``makemore --help`` or a usage
error should answer at once. So the declarations are read from the source files with ``ast``:
``REGISTRY`` in ``models/__init__.py`` names each family's config class, whose dataclass
fields (literal defaults) and ``train_defaults`` (a literal dict or ``dict(...)`` of literals)
are read from its module. Anything else (a computed default, ``field(...)``, a base class from
another module) makes ``families()`` import the real modules instead: slower, never wrong.
``tests/test_cli_startup.py`` checks that both readings agree and that the fast one is used.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import re
from pathlib import Path
from typing import Any

_COMMENT = re.compile(r"#\s*(.+)$")


class NotPlain(Exception):
    """The source declares something that only running it can tell."""


@dataclasses.dataclass(frozen=True)
class Option:
    """One config field: its name, default and help (the trailing ``# comment``)."""

    name: str
    default: Any
    comment: str


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family's config options, in field order, and its own training defaults."""

    options: tuple[Option, ...]
    train_defaults: dict[str, Any]


@functools.cache
def families() -> dict[str, Family]:
    """name -> Family of every registered model family, in ``REGISTRY`` order."""
    try:
        return from_source()
    except (NotPlain, OSError, SyntaxError, ValueError):
        return from_modules()


def from_modules() -> dict[str, Family]:
    """The declarations of the imported families (imports torch)."""
    from makemore.models import REGISTRY

    out = {}
    for name, family in REGISTRY.items():
        comments: dict[str, str] = {}
        for klass in reversed(family.config.__mro__):
            if dataclasses.is_dataclass(klass):
                comments.update(class_comments(Path(_module_file(klass.__module__)), klass.__name__))
        options = tuple(
            Option(f.name, f.default, comments.get(f.name, "")) for f in dataclasses.fields(family.config) if f.init
        )
        out[name] = Family(options, dict(family.config.train_defaults))
    return out


def from_source() -> dict[str, Family]:
    """The declarations read from ``makemore/models/*.py`` (no import).

    Raises:
        NotPlain: a declaration that only running the module can tell.
    """
    package = Path(_module_file("makemore.models"))
    tree = ast.parse(package.read_text(encoding="utf-8"))
    modules: dict[str, dict[str, ast.ClassDef]] = {}
    lines: dict[str, list[str]] = {}
    out = {}
    for name, (module, class_name) in _registry(tree).items():
        if module not in modules:
            source = (package.parent / f"{module}.py").read_text(encoding="utf-8")
            parsed = ast.parse(source)
            modules[module] = {node.name: node for node in parsed.body if isinstance(node, ast.ClassDef)}
            lines[module] = source.splitlines()
        fields, train_defaults = _config_class(modules[module], lines[module], class_name)
        out[name] = Family(tuple(fields.values()), train_defaults)
    return out


def class_comments(path: Path, class_name: str) -> dict[str, str]:
    """field -> trailing ``# comment`` of the fields a class declares (itself, not its bases)."""
    source = path.read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            lines = source.splitlines()
            return {name: _comment(lines, stmt) for name, stmt in _fields(node) if _comment(lines, stmt)}
    return {}


def _module_file(module: str) -> str:
    spec = importlib.util.find_spec(module)  # imports the parent packages only (makemore: light)
    if spec is None or not spec.origin:
        raise NotPlain(module)
    return spec.origin


def _registry(tree: ast.Module) -> dict[str, tuple[str, str]]:
    """family name -> (module, config class) of ``REGISTRY = {"name": Family(module.Config, ...)}``."""
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        target = node.target if isinstance(node, ast.AnnAssign) else target
        if isinstance(target, ast.Name) and target.id == "REGISTRY" and isinstance(node.value, ast.Dict):
            out = {}
            for key, value in zip(node.value.keys, node.value.values):
                config = value.args[0] if isinstance(value, ast.Call) and value.args else None
                if not (isinstance(key, ast.Constant) and isinstance(config, ast.Attribute)):
                    raise NotPlain("REGISTRY")
                if not isinstance(config.value, ast.Name):
                    raise NotPlain("REGISTRY")
                out[key.value] = (config.value.id, config.attr)
            return out
    raise NotPlain("REGISTRY")


def _config_class(classes: dict[str, ast.ClassDef], lines: list[str], name: str) -> tuple[dict, dict]:
    """(field -> Option, train_defaults) of config class ``name``, its bases in the module first."""
    node = classes.get(name)
    if node is None or len(node.bases) != 1 or not isinstance(node.bases[0], ast.Name):
        raise NotPlain(name)
    base = node.bases[0].id
    if base == "ModelConfig":
        fields, train_defaults = {}, {}
    elif base in classes:
        fields, train_defaults = _config_class(classes, lines, base)
        fields = dict(fields)
    else:
        raise NotPlain(base)
    for field, stmt in _fields(node):
        if stmt.value is None:
            raise NotPlain(f"{name}.{field} has no default")
        inherited = fields[field].comment if field in fields else ""
        fields[field] = Option(field, _literal(stmt.value, name), _comment(lines, stmt) or inherited)
    for stmt in node.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "train_defaults" for t in targets):
            train_defaults = _literal_dict(stmt.value, name)
    return fields, train_defaults


def _fields(node: ast.ClassDef) -> list[tuple[str, ast.AnnAssign]]:
    """The dataclass fields a class body declares: annotated names that are not ClassVar."""
    return [
        (stmt.target.id, stmt)
        for stmt in node.body
        if isinstance(stmt, ast.AnnAssign)
        and isinstance(stmt.target, ast.Name)
        and "ClassVar" not in ast.unparse(stmt.annotation)
    ]


def _literal(node: ast.expr, where: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise NotPlain(f"{where}: {ast.unparse(node)}") from None


def _literal_dict(node: ast.expr | None, where: str) -> dict[str, Any]:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if any(k.arg is None for k in node.keywords):
            raise NotPlain(f"{where}.train_defaults")
        return {k.arg: _literal(k.value, where) for k in node.keywords}
    value = _literal(node, where) if node is not None else None
    if not isinstance(value, dict):
        raise NotPlain(f"{where}.train_defaults")
    return value


def _comment(lines: list[str], stmt: ast.stmt) -> str:
    match = _COMMENT.search(lines[stmt.end_lineno - 1][stmt.end_col_offset :])
    return match.group(1).strip() if match else ""
