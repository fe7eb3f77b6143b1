"""The shared backbone interface: layer taps by number, a front end, checkpoint loading.

Every pre-trained backbone of the book (VGGish, PANNs CNN10/CNN14, CREPE, AST, PaSST) is a
:class:`Backbone`. A subclass only has to

1. build its layers with the **official state-dict names** (so published checkpoints load with
   ``strict=True``),
2. implement ``forward(x) -> dict`` (at least ``"embedding"`` or ``"logits"``),
3. implement :meth:`Backbone.tap_modules`, mapping every tap name to the sub-module whose
   *forward output* is that tap (use an ``nn.Identity`` placed in ``forward`` when the tensor is
   not the output of an existing module; Identity adds no state-dict keys),
4. set the attributes ``sample_rate``, ``embed_dim``, ``input_kind`` and ``frontend``.

:meth:`Backbone.forward_features` then collects taps with forward hooks
(``register_forward_hook``) and stops the forward pass right after the deepest requested tap,
so asking for an early layer does not pay for the whole network.

Attributes (set by subclasses):
    tap_names: tap identifiers in forward order (ints in the numbering of the multilayer-fusion
        paper, e.g. VGGish ReLU layers ``[2, 5, ..., 22]``, CNN14 blocks ``[1..6]``; strings for
        named taps such as ``"logmel"`` or ``"classifier"``).
    input_kind: what ``forward`` takes: ``"wave"`` (B, T) waveform at ``sample_rate``;
        ``"logmel"`` a (B, ...) spectrogram made by ``frontend``; ``"examples"`` fixed-size
        chunks of one clip (VGGish (N, 1, 96, 64) patches, CREPE (N, 1024) frames).
    frontend: callable turning a waveform into ``forward``'s input, or ``None`` when
        ``input_kind == "wave"`` (the model holds its own front end, as PANNs do). For
        ``"examples"`` it takes one clip (T,) and returns (N, ...) examples.
    sample_rate: waveform rate in Hz the model (and its front end) expects.
    embed_dim: size of ``forward(x)["embedding"]`` (B, embed_dim).
"""
from __future__ import annotations

import importlib
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

Tap = int | str


class CheckpointError(RuntimeError):
    """A checkpoint does not fit a model; the message names the file and the bad keys."""


class _StopForward(Exception):
    """Raised inside a hook to end the forward pass once the deepest wanted tap is computed."""


class Backbone(nn.Module):
    """Base class of all backbones (see the module docstring for the contract)."""

    tap_names: list[Tap] = []
    input_kind: str = "wave"
    sample_rate: int = 16000
    embed_dim: int = 0
    name: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.frontend: Callable[[torch.Tensor], torch.Tensor] | None = None

    # ------------------------------------------------------------------ contract
    def tap_modules(self) -> dict[Tap, nn.Module]:
        """Mapping tap name -> module whose forward output is that tap (all of ``tap_names``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define tap_modules()")

    def example_input(self, batch_size: int = 1, seconds: float = 10.0) -> torch.Tensor:
        """A random input of the right shape for ``forward`` covering ``seconds`` of audio
        (used by benchmarks and FLOP counts). For ``examples`` models ``batch_size`` clips
        give ``batch_size * examples_per_clip`` examples."""
        raise NotImplementedError(f"{type(self).__name__} does not define example_input()")

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the output layer by a freshly initialised one with ``num_classes`` outputs."""
        raise NotImplementedError(f"{type(self).__name__} has no replaceable classifier")

    # ------------------------------------------------------------------ taps
    def _check_taps(self, taps: Sequence[Tap] | None) -> list[Tap]:
        if taps is None:
            return list(self.tap_names)
        if isinstance(taps, (int, str)):
            taps = [taps]
        bad = [t for t in taps if t not in self.tap_names]
        if bad:
            raise ValueError(f"{self.name or type(self).__name__}: unknown tap(s) {bad}; "
                             f"available taps are {list(self.tap_names)}")
        return list(taps)

    def forward_features(self, x: torch.Tensor, taps: Sequence[Tap] | None = None,
                         **forward_kw: Any) -> dict[Tap, torch.Tensor]:
        """Run the model on ``x`` and return the requested intermediate outputs.

        Args:
            x: the model input (as for ``forward``).
            taps: tap names (subset of ``tap_names``); ``None`` = all of them.
        Returns:
            ``{tap: tensor}`` in the requested order. Shapes are model specific and documented
            by each backbone (e.g. CNN14 block k: (B, C_k, T_k, F_k)). The forward pass stops
            after the deepest requested tap.
        """
        wanted = self._check_taps(taps)
        modules = self.tap_modules()
        order = [t for t in self.tap_names if t in wanted]
        last = order[-1]
        out: dict[Tap, torch.Tensor] = {}
        handles = []

        def make_hook(tap: Tap) -> Callable:
            def hook(_module: nn.Module, _inp: Any, output: torch.Tensor) -> None:
                out[tap] = output
                if tap == last:
                    raise _StopForward
            return hook

        for tap in order:
            handles.append(modules[tap].register_forward_hook(make_hook(tap)))
        try:
            self.forward(x, **forward_kw)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [t for t in wanted if t not in out]
        if missing:
            raise RuntimeError(f"{self.name}: forward pass did not reach tap(s) {missing}")
        return {t: out[t] for t in wanted}

    def prepare(self, wave: torch.Tensor) -> torch.Tensor:
        """Apply ``frontend`` to a waveform (identity when the model takes waveforms)."""
        return wave if self.frontend is None else self.frontend(wave)

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, input_kind={self.input_kind!r}, "
                f"sample_rate={self.sample_rate}, embed_dim={self.embed_dim}")


class LazyFrontend:
    """A front end imported on first use from ``"package.module:function"`` (with kwargs).

    Lets a backbone name a front end of :mod:`audiorepro.frontends` without importing it at
    build time; calling it when the module is missing raises an error naming the target.
    """

    def __init__(self, target: str, **kwargs: Any) -> None:
        self.target = target
        self.kwargs = kwargs
        self._fn: Callable | None = None

    def resolve(self) -> Callable:
        if self._fn is None:
            self._fn = resolve_dotted(self.target)
        return self._fn

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        return self.resolve()(wave, **self.kwargs)

    def __repr__(self) -> str:
        return f"LazyFrontend({self.target!r})"


def resolve_dotted(target: str) -> Any:
    """Import ``"pkg.module:attr"`` and return the attribute; clear ImportError otherwise."""
    if ":" not in target:
        raise ValueError(f"dotted target must look like 'pkg.module:attr', got {target!r}")
    mod_name, attr = target.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ImportError(f"cannot import {mod_name!r} (needed for {target!r}): {exc}") from exc
    try:
        return getattr(mod, attr)
    except AttributeError as exc:
        raise ImportError(f"module {mod_name!r} has no attribute {attr!r} "
                          f"(needed for {target!r})") from exc


# ---------------------------------------------------------------------- width scaling
def scaled_width(channels: int, scale: float, multiple: int = 8) -> int:
    """``channels * scale`` rounded to the nearest multiple of ``multiple`` (at least one).

    >>> scaled_width(64, 0.25), scaled_width(2048, 0.25), scaled_width(64, 1.0)
    (16, 512, 64)
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if scale == 1.0:
        return channels
    return max(multiple, int(round(channels * scale / multiple)) * multiple)


# ---------------------------------------------------------------------- checkpoints
@dataclass
class LoadReport:
    """Outcome of :func:`load_checkpoint` (key lists after key mapping)."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 10) -> str:
        def cut(items: list) -> str:
            more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
            return ", ".join(map(str, items[:limit])) + more
        lines = [f"checkpoint {self.source}: {len(self.loaded)} keys match"]
        if self.missing:
            lines.append(f"  missing in checkpoint ({len(self.missing)}): {cut(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected in checkpoint ({len(self.unexpected)}): "
                         f"{cut(self.unexpected)}")
        if self.mismatched:
            lines.append(f"  wrong shape ({len(self.mismatched)}): " + cut(
                [f"{k} checkpoint {list(c)} vs model {list(m)}" for k, c, m in self.mismatched]))
        return "\n".join(lines)


KeyMap = Mapping[str, str] | Callable[[str], str | None] | None
_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "net")


def read_state_dict(path_or_state_dict: str | os.PathLike | Mapping[str, Any]
                    ) -> tuple[dict[str, torch.Tensor], str]:
    """Load a state dict from a file or mapping and unwrap ``{'model': ...}``-style wrappers.

    Returns ``(state_dict, source_description)``.
    """
    if isinstance(path_or_state_dict, Mapping):
        obj, source = path_or_state_dict, "<state dict>"
    else:
        path = Path(path_or_state_dict)
        source = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint file not found: {path}")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle errors come in many types
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    # unwrap {'model': state_dict, ...} (PANNs), {'state_dict': ...} (Lightning) etc.
    for _ in range(2):
        if isinstance(obj, Mapping) and not _is_state_dict(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)),
                         None)
            if inner is None:
                raise CheckpointError(f"checkpoint {source}: no state dict found; top-level keys "
                                      f"are {list(obj)[:10]}")
            obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        raise CheckpointError(f"checkpoint {source} does not hold a state dict of tensors")
    return OrderedDict((str(k), v) for k, v in obj.items()), source


def _is_state_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _apply_key_map(key: str, key_map: KeyMap) -> str | None:
    if key_map is None:
        return key
    if callable(key_map):
        return key_map(key)
    for old, new in key_map.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def load_checkpoint(model: nn.Module, path_or_state_dict: str | os.PathLike | Mapping[str, Any],
                    strict: bool = True, key_map: KeyMap = None,
                    strip_prefixes: Sequence[str] = ("module.",)) -> LoadReport:
    """Load a published checkpoint into ``model``.

    Args:
        model: the module to fill (its parameters are overwritten in place).
        path_or_state_dict: a ``.pth``/``.pt`` file or a mapping. Wrappers such as PANNs'
            ``{'model': state_dict}`` or Lightning's ``{'state_dict': ...}`` are unwrapped.
        strict: raise :class:`CheckpointError` when any key is missing, unexpected or has the
            wrong shape (the message names the file and the keys). With ``strict=False`` the
            matching keys are loaded and the rest is only reported.
        key_map: renames checkpoint keys before matching: a dict ``{old_prefix: new_prefix}``
            (first matching prefix wins) or a function ``key -> new key`` (``None`` drops it).
        strip_prefixes: prefixes removed when *every* checkpoint key carries them and the model's
            keys do not (``module.`` from DataParallel, as in AST's released files).
    Returns:
        a :class:`LoadReport`.
    """
    sd, source = read_state_dict(path_or_state_dict)
    own = model.state_dict()
    for prefix in strip_prefixes:
        if sd and all(k.startswith(prefix) for k in sd) and not any(k.startswith(prefix) for k in own):
            sd = OrderedDict((k[len(prefix):], v) for k, v in sd.items())
    mapped: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, v in sd.items():
        nk = _apply_key_map(k, key_map)
        if nk is not None:
            mapped[nk] = v
    report = LoadReport(source=source)
    for k, v in mapped.items():
        if k not in own:
            report.unexpected.append(k)
        elif tuple(v.shape) != tuple(own[k].shape):
            report.mismatched.append((k, tuple(v.shape), tuple(own[k].shape)))
        else:
            report.loaded.append(k)
    report.missing = [k for k in own if k not in mapped]
    if strict and not report.ok:
        raise CheckpointError(f"{type(model).__name__} cannot load strictly:\n" + report.describe())
    to_load = OrderedDict((k, mapped[k]) for k in report.loaded)
    model.load_state_dict(to_load, strict=False)
    return report


def save_checkpoint(model: nn.Module, path: str | os.PathLike, wrapper: str | None = None) -> Path:
    """Save ``model.state_dict()`` (optionally as ``{wrapper: state_dict}``, e.g. PANNs' 'model')."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = model.state_dict()
    torch.save({wrapper: sd} if wrapper else sd, path)
    return path
