"""Run directories: atomic checkpoints, the done marker and the stored result.

Layout of a run directory::

    config.json      the TrainConfig of the run (result-relevant keys)
    checkpoint.pt    latest state (end of the last finished epoch), overwritten atomically
    history.csv      tidy history so far (epoch, iteration, split, metric, value)
    result.pt        best weights + history + best metrics (written when the run finishes)
    done.json        done marker: best metrics, epochs, iterations, duration_s
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..fileio import atomic_save_torch, atomic_write_text

__all__ = ["atomic_save", "atomic_write_text", "save_checkpoint", "load_checkpoint",
           "write_done", "read_done", "load_model_state", "load_result", "check_config", "CHECKPOINT", "RESULT",
           "DONE", "CONFIG", "HISTORY"]

CHECKPOINT = "checkpoint.pt"
RESULT = "result.pt"
DONE = "done.json"
CONFIG = "config.json"
HISTORY = "history.csv"


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace`` (atomic)."""
    return atomic_save_torch(obj, path)


def _load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt / foreign file
        raise RuntimeError(f"cannot read checkpoint file {path}: {exc}") from exc


def save_checkpoint(run_dir: str | os.PathLike, state: dict) -> Path:
    """Atomically write ``run_dir/checkpoint.pt`` (tensors, lists, numbers, strings only)."""
    return atomic_save(state, Path(run_dir) / CHECKPOINT)


def load_checkpoint(run_dir: str | os.PathLike) -> dict | None:
    """The latest checkpoint of ``run_dir`` or ``None`` if there is none."""
    path = Path(run_dir) / CHECKPOINT
    return _load(path) if path.is_file() else None


def _read_json(path: Path) -> Any:
    """JSON of a run file; a corrupt file raises ``RuntimeError`` naming it and the way out."""
    try:
        return json.loads(path.read_text(encoding="utf8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RuntimeError(f"run file {path} is unreadable ({exc}); delete the run directory "
                           f"{path.parent} to retrain") from exc


def load_model_state(model: torch.nn.Module, state: dict, run_dir: str | os.PathLike | None,
                     what: str = "checkpoint") -> None:
    """``model.load_state_dict(state)`` with an error that names the run directory and the first
    keys / shapes that differ (a run stored for another model shape)."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        own = model.state_dict()
        missing = sorted(set(own) - set(state))[:3]
        extra = sorted(set(state) - set(own))[:3]
        shapes = [f"{k}: stored {tuple(state[k].shape)} != model {tuple(own[k].shape)}"
                  for k in own if k in state and hasattr(state[k], "shape")
                  and tuple(state[k].shape) != tuple(own[k].shape)][:3]
        detail = "; ".join(x for x in (f"missing {missing}" if missing else "",
                                       f"unexpected {extra}" if extra else "", "; ".join(shapes)) if x)
        raise RuntimeError(f"the {what} in run directory {run_dir} was made for another model shape "
                           f"({detail}); use another run_dir or delete it") from exc


def check_config(run_dir: str | os.PathLike, config: dict) -> None:
    """Write ``config.json`` for a new run, or check it equals the stored one.

    Raises ``ValueError`` naming the run directory and the differing keys when an existing run
    was made with another configuration (use a new ``run_dir`` or delete the old one).
    """
    path = Path(run_dir) / CONFIG
    cfg = json.loads(json.dumps(config))
    if path.is_file():
        stored = _read_json(path)
        diff = sorted(k for k in set(stored) | set(cfg) if stored.get(k) != cfg.get(k))
        if diff:
            detail = ", ".join(f"{k}: stored {stored.get(k)!r} != now {cfg.get(k)!r}" for k in diff[:5])
            raise ValueError(f"run directory {run_dir} holds a run with another config ({detail}); "
                             "use another run_dir or delete it")
    else:
        atomic_write_text(path, json.dumps(cfg, indent=1, sort_keys=True))


def write_done(run_dir: str | os.PathLike, result_state: dict, summary: dict) -> None:
    """Store ``result.pt`` then the ``done.json`` marker (marker last: its presence means done)."""
    atomic_save(result_state, Path(run_dir) / RESULT)
    atomic_write_text(Path(run_dir) / DONE, json.dumps(summary, indent=1, sort_keys=True, default=float))


def read_done(run_dir: str | os.PathLike) -> dict | None:
    """The done marker's summary, or ``None`` if the run has not finished."""
    path = Path(run_dir) / DONE
    if not path.is_file():
        return None
    if not (Path(run_dir) / RESULT).is_file():
        raise RuntimeError(f"{path} exists but {Path(run_dir) / RESULT} is missing; delete the run dir")
    return _read_json(path)


def load_result(run_dir: str | os.PathLike) -> dict:
    """The stored ``result.pt`` of a finished run."""
    return _load(Path(run_dir) / RESULT)
