"""Self-describing checkpoints: one safetensors file each.

Tensors: ``model.*`` (the model's state dict), ``optim.*`` (optimizer state tensors) and
``rng.*`` (RNG states as uint8). The header's metadata holds one JSON document under the key
``makemore``: model kind and config, vocabulary, data description, train config, step,
metrics, and the non-tensor parts of the optimizer state. Nothing is ever unpickled.
Writes are atomic (``files.atomic_write_bytes``); a checkpoint is loaded from one read of the
file, so its header and its tensors always come from the same write.

Since format 2 the header also records ``tensors_sha256``, a SHA-256 of every tensor (name,
dtype, shape and bytes, in name order), checked on every load: a bit flipped on disk or a
tensor edited by hand is refused instead of silently changing scores. Hashing runs at about
1 GB/s here (the default LSTM's ``last`` checkpoint, ~10 MB with its optimizer state, in ~11 ms).
Weights that are not finite are refused too: training never saves them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from makemore import files
from makemore.errors import MakemoreError

FORMAT_VERSION = 2  # 2: tensors_sha256 in the header
META_KEY = "makemore"
CHECKSUM_KEY = "tensors_sha256"


@dataclass
class Checkpoint:
    """What a checkpoint file holds."""

    meta: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None = None
    rng_state: dict[str, torch.Tensor] = field(default_factory=dict)
    average_state: dict[str, torch.Tensor] = field(default_factory=dict)  # weight averaging (TrainConfig.ema)


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors: each one's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _flatten_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        plain: dict[str, Any] = {}
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{param_id}.{key}"] = value
            else:
                plain[key] = value
        plain_state[str(param_id)] = plain
    return tensors, {"param_groups": state_dict["param_groups"], "plain_state": plain_state}


def _unflatten_optimizer_state(tensors: dict[str, torch.Tensor], info: dict) -> dict:
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in info["plain_state"].items()}
    for name, value in tensors.items():
        _, param_id, key = name.split(".", 2)
        state.setdefault(int(param_id), {})[key] = value
    return {"state": state, "param_groups": info["param_groups"]}


def save_checkpoint(
    path: str | Path,
    *,
    model_state: dict[str, torch.Tensor],
    meta: dict[str, Any],
    optimizer_state: dict | None = None,
    rng_state: dict[str, torch.Tensor] | None = None,
    average_state: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write one checkpoint file atomically.

    Args:
        path: destination ``.safetensors`` file.
        model_state: the model's ``state_dict()``.
        meta: JSON-serialisable description (model kind/config, vocab, data, step, metrics...).
        optimizer_state: an optimizer's ``state_dict()``, or None.
        rng_state: named RNG states (uint8 tensors), or None.
        average_state: the averaged parameters of weight averaging, by name, or None.
    """
    tensors = {f"model.{k}": v.detach().to("cpu").clone().contiguous() for k, v in model_state.items()}
    meta = dict(meta, format_version=FORMAT_VERSION)
    if optimizer_state is not None:
        optim_tensors, optim_info = _flatten_optimizer_state(optimizer_state)
        tensors.update({k: v.detach().to("cpu").clone().contiguous() for k, v in optim_tensors.items()})
        meta["optimizer"] = optim_info
    for name, value in (rng_state or {}).items():
        tensors[f"rng.{name}"] = value.detach().to("cpu").clone().contiguous()
    for name, value in (average_state or {}).items():
        tensors[f"average.{name}"] = value.detach().to("cpu").clone().contiguous()
    meta[CHECKSUM_KEY] = tensors_sha256(tensors)
    data = save_safetensors_bytes(tensors, metadata={META_KEY: json.dumps(meta)})
    files.atomic_write_bytes(path, data)


def _parse_meta(header: dict[str, Any], path: Path) -> dict[str, Any]:
    if META_KEY not in header:
        raise MakemoreError(f"{path}: not a makemore checkpoint (no '{META_KEY}' metadata)")
    try:
        meta = json.loads(header[META_KEY])
    except json.JSONDecodeError:
        raise MakemoreError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise MakemoreError(f"{path}: checkpoint metadata is not a JSON object")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MakemoreError(f"{path}: not a makemore checkpoint (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise MakemoreError(
            f"{path}: written by a newer makemore (checkpoint format {version}; this one reads format "
            f"{FORMAT_VERSION}): upgrade makemore to read it"
        )
    return meta


def read_meta(path: str | Path) -> dict[str, Any]:
    """Only the JSON metadata of a checkpoint (cheap: reads the header)."""
    path = Path(path)
    if not path.is_file():
        raise MakemoreError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise MakemoreError(f"{path}: not a makemore checkpoint ({exc})") from None
    meta = _parse_meta(header, path)
    meta.pop(CHECKSUM_KEY, None)  # about the tensors, not the run: checked when they are loaded
    return meta


def _header_metadata(raw: bytes, path: Path) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors file's header, from the file's bytes."""
    size = int.from_bytes(raw[:8], "little") if len(raw) >= 8 else -1
    if not 0 < size <= len(raw) - 8:
        raise MakemoreError(f"{path}: not a makemore checkpoint (no safetensors header)")
    try:
        header = json.loads(raw[8 : 8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MakemoreError(f"{path}: not a makemore checkpoint (unreadable header)") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _check_tensors(tensors: dict[str, torch.Tensor], meta: dict[str, Any], path: Path) -> None:
    """Refuse tensors that are not the ones the header was written with, or weights that are not finite."""
    recorded = meta.pop(CHECKSUM_KEY, None)
    if meta["format_version"] >= 2 or recorded is not None:
        if not isinstance(recorded, str):
            raise MakemoreError(f"{path}: {CHECKSUM_KEY}: missing or not a string")
        if tensors_sha256(tensors) != recorded:
            raise MakemoreError(
                f"{path}: its tensors do not match the checksum in its header (the file is damaged or was edited)"
            )
    for name, tensor in tensors.items():
        if name.startswith(("model.", "average.")) and tensor.is_floating_point() and not tensor.isfinite().all():
            raise MakemoreError(
                f"{path}: weight {name.split('.', 1)[1]} is not finite (NaN or inf): not a usable model"
            )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint`` (one read: header and tensors agree)."""
    path = Path(path)
    if not path.is_file():
        raise MakemoreError(f"{path}: no such checkpoint")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MakemoreError(f"{path}: cannot read ({exc.strerror})") from None
    meta = _parse_meta(_header_metadata(raw, path), path)
    try:
        tensors = load_safetensors_bytes(raw)
    except (SafetensorError, OSError, ValueError) as exc:
        raise MakemoreError(f"{path}: unreadable checkpoint ({exc})") from None
    _check_tensors(tensors, meta, path)
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    rng_state = {k[len("rng.") :]: v for k, v in tensors.items() if k.startswith("rng.")}
    average_state = {k[len("average.") :]: v for k, v in tensors.items() if k.startswith("average.")}
    optimizer_state = None
    if "optimizer" in meta:
        optim_tensors = {k: v for k, v in tensors.items() if k.startswith("optim.")}
        optimizer_state = _unflatten_optimizer_state(optim_tensors, meta.pop("optimizer"))
    return Checkpoint(
        meta=meta,
        model_state=model_state,
        optimizer_state=optimizer_state,
        rng_state=rng_state,
        average_state=average_state,
    )
