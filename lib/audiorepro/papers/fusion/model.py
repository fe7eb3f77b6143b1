"""Multilayer feature fusion: Eqs. 1-3 and the layer framing of each backbone.

Paper: D. Niizumi et al., *Composing General Audio Representation by Fusing Multilayer Features
of a Pre-trained Model*, EUSIPCO 2022, Sec. III. For any :class:`~audiorepro.backbones.Backbone`
whose ``forward_features(x, taps)`` gives layer outputs:

* **Eq. 1** :func:`eq1_time_features` - a layer output ``z_l`` (B, C_l, T_l, F_l) (our backbones
  are time-major: time is dim 2, frequency dim 3) is max-pooled over time to ``T_o`` frames and
  channel x frequency are flattened: (B, C_l * F_l, T_o). Flattening order is channel-major
  (index ``c * F_l + f``). The paper sets kernel = stride = T_l / T_o; we use adaptive max pooling,
  which is exactly that when T_l is a multiple of T_o and still gives T_o frames when it is not.
  A layer without a time axis (VGGish FC layers, AST [CLS]) (B, D) is repeated T_o times
  (:func:`repeat_time`).
* **Eq. 2** :func:`eq2_fuse` - concatenate a middle and a late layer along the feature axis:
  (B, D_M + D_L, T_o).
* **Eq. 3** :func:`eq3_pool` - mean + max over time: (B, D).

Because Eq. 3 acts on every feature dimension separately, pooling the fused features equals
concatenating the pooled features of each layer; the experiments therefore cache one pooled
vector per layer and clip, and a Fusion#M#L embedding is ``concat(emb[M], emb[L])``
(:func:`fused_embedding`; tested against fuse-then-pool).

Backbone-specific framing (:func:`layer_features`):

* PANNs CNN10/14 (waveform in): T_o = time frames of the last conv block (T/32 for CNN14, the
  paper's Table II); every block is brought to T_o with Eq. 1.
* VGGish (0.96 s examples): each example's layer output goes through Eq. 1 with T_o = 6 (time
  frames after the 4th pooling, Table I); the per-example features are concatenated along time
  (6 frames per example); FC layers 18/20/22 (N, D) are repeated 6 times per example (Sec. IV-A1).
* CREPE (1024-sample frames every ``hop`` samples): one frame is one time step; a conv block output
  (N, C, L, 1) flattens channel x (within-frame position) per frame, the classifier logits (N, 360)
  are taken as they are; T_o = number of frames (no time pooling: CREPE has no time
  down-sampling across frames).
* AST-like backbones whose taps are already (B, D) vectors (AST: the [CLS] token of layers 2 to
  the last, as the paper, Sec. IV-A3): repeated over T_o = 1 (Eq. 3 then gives 2 x the vector,
  the same linear-probe information as the [CLS] embedding itself); a
  clip longer than the one window a fixed-input AST takes is framed into windows, one time step
  each (:func:`_windowed_features`), as VGGish frames its examples.

``max_dim`` (default ``None`` = the paper) optionally caps a layer's C * F by max-pooling the
frequency axis to ``max_dim // C`` bins; a documented deviation used only for layers whose flat
size would not fit a CPU linear probe (e.g. CREPE-full block 1: 1024 x 128 = 131072).

Everything here is a pure tensor function (no file I/O, no training); embedding caches, the
linear evaluation and the layer choice live in :mod:`audiorepro.papers.fusion.experiments`.
"""
from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from audiorepro.backbones.base import Backbone, Tap

__all__ = [
    "FusionError", "PAPER_TASKS", "LATE_TASKS", "PAPER_FUSION_LAYERS",
    "eq1_time_features", "repeat_time", "eq2_fuse", "eq3_pool", "fused_embedding",
    "backbone_family", "default_taps", "is_token_model", "panns_time_frames", "layer_features", "layer_embeddings",
]

#: the nine downstream tasks of the paper (column keys of the paper's Table III in paper.yml)
PAPER_TASKS = ["ESC-50", "US8K", "SPCV2", "VC1", "VF", "CRM-D", "GTZAN", "NSynth", "Surge"]
#: D_L of the paper: the tasks whose peaks lie in the late layers (blue box of Figs. 2-4)
LATE_TASKS = ["ESC-50", "US8K", "GTZAN"]
#: the layers the paper chose: (M, L) per backbone family (Table III)
PAPER_FUSION_LAYERS = {"VGGish": (10, 15), "CNN14": (3, 6), "AST": (5, 12)}
#: time frames of a VGGish example after its 4th pooling (paper Table I)
VGGISH_FRAMES = 6


class FusionError(ValueError):
    """Bad input to the fusion method or its evaluation; the message names the parameter."""


# ============================================================================ Eqs. 1-3
def eq1_time_features(z: torch.Tensor, t_out: int, time_dim: int = 2, freq_dim: int = 3,
                      max_dim: int | None = None) -> torch.Tensor:
    """Eq. 1: ``flatten(maxpool(z, T_o))``.

    Args:
        z: (B, C, T, F) layer output (``time_dim``/``freq_dim`` name the axes; default
            time-major (B, C, T, F) as all our CNN backbones).
        t_out: T_o, number of output time frames (1 <= T_o <= T).
        max_dim: optional cap on C * F (see the module docstring); ``None`` = paper.
    Returns:
        (B, C * F', T_o) with F' = F (or fewer bins when capped), channel-major flattening.
    """
    if z.dim() != 4:
        raise FusionError(f"eq1_time_features: z must be 4-D (B, C, T, F), got {tuple(z.shape)}")
    if {time_dim % 4, freq_dim % 4} != {2, 3}:
        raise FusionError(f"eq1_time_features: time_dim={time_dim}, freq_dim={freq_dim} must be "
                          f"the two distinct axes 2 and 3")
    z = z.permute(0, 1, freq_dim % 4, time_dim % 4)  # (B, C, F, T)
    b, c, f, t = z.shape
    if not 1 <= int(t_out) <= t:
        raise FusionError(f"eq1_time_features: t_out={t_out} must lie in [1, T={t}]")
    if max_dim is not None and c * f > max_dim:
        f_new = max(1, int(max_dim) // c)
        z = F.adaptive_max_pool2d(z, (f_new, t))
        f = f_new
    z = z.reshape(b, c * f, t)
    return F.adaptive_max_pool1d(z, int(t_out))


def repeat_time(v: torch.Tensor, t_out: int) -> torch.Tensor:
    """A layer output without time axis (B, D) -> (B, D, T_o), repeated (VGGish FC layers)."""
    if v.dim() != 2:
        raise FusionError(f"repeat_time: expected (B, D), got {tuple(v.shape)}")
    return v[:, :, None].expand(-1, -1, int(t_out))


def eq2_fuse(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 2: concatenate (B, D_i, T_o) features of several layers -> (B, sum D_i, T_o)."""
    if len(features) == 0:
        raise FusionError("eq2_fuse: no features given")
    shapes = {(f.shape[0], f.shape[2]) for f in features}
    if any(f.dim() != 3 for f in features) or len(shapes) != 1:
        raise FusionError(f"eq2_fuse: features must all be (B, D_i, T_o) with the same B and T_o, "
                          f"got {[tuple(f.shape) for f in features]}")
    return torch.cat(list(features), dim=1)


def eq3_pool(z: torch.Tensor) -> torch.Tensor:
    """Eq. 3: mean over time + max over time, (B, D, T) -> (B, D)."""
    if z.dim() != 3:
        raise FusionError(f"eq3_pool: expected (B, D, T), got {tuple(z.shape)}")
    return z.mean(dim=2) + z.amax(dim=2)


def fused_embedding(embeddings: Mapping[Tap, np.ndarray], layers: Sequence[Tap]) -> np.ndarray:
    """Fusion#M#L... embedding from per-layer Eq.-3 embeddings (N, D_l): their concatenation
    (N, sum D_l) - equal to Eq. 3 of Eq. 2 because mean and max act per dimension."""
    missing = [t for t in layers if t not in embeddings]
    if missing:
        raise FusionError(f"fused_embedding: layers {missing} not among {list(embeddings)}")
    return np.concatenate([np.asarray(embeddings[t]) for t in layers], axis=1)


# ============================================================================ layer framing
def backbone_family(model: Backbone) -> str:
    """How :func:`layer_features` frames ``model``: ``panns``, ``vggish``, ``crepe`` or
    ``vector`` (any other backbone: taps are (B, D) vectors or (B, C, T, F) maps)."""
    return {"VGGish": "vggish", "Crepe": "crepe", "PannsCNN": "panns"}.get(type(model).__name__,
                                                                          "vector")


def is_token_model(model: Backbone) -> bool:
    """A transformer whose taps pool prefix tokens (AST, PaSST: [CLS] and distillation)."""
    return int(getattr(model, "num_prefix_tokens", 0) or 0) > 0


def default_taps(model: Backbone) -> list[Tap]:
    """The layers the chapter evaluates: every integer tap, plus CREPE's ``classifier``; for a
    token model (AST) layers 2 to the last, as the paper evaluates AST (Sec. IV-A3: "layer 2 to
    12 outputs using 768-d [CLS] token embeddings")."""
    taps = [t for t in model.tap_names if isinstance(t, int) or t == "classifier"]
    if is_token_model(model) and len(taps) > 1:
        taps = [t for t in taps if not isinstance(t, int) or t >= 2]
    return taps


def panns_time_frames(model: Backbone, n_samples: int) -> int:
    """T_o of a PANNs CNN for clips of ``n_samples`` samples: the time frames left after its last
    conv block (every block halves time, except CNN14's block 6)."""
    t = n_samples // model.hop_size + 1
    for i in range(1, model.n_blocks + 1):
        if not (model.arch == "cnn14" and i == 6):
            t //= 2
    if t < 1:
        raise FusionError(f"layer_features: clips of {n_samples} samples are too short for "
                          f"{model.name} (no time frame left after the last block)")
    return t


def _model_device(model: torch.nn.Module) -> torch.device | None:
    """Where ``model``'s weights are (``None`` for a model without parameters or buffers)."""
    t = next(itertools.chain(model.parameters(), model.buffers()), None)
    return None if t is None else t.device


@torch.no_grad()
def layer_features(model: Backbone, waves: torch.Tensor, taps: Sequence[Tap] | None = None,
                   max_dim: int | None = None, token_mode: str = "cls") -> dict[Tap, torch.Tensor]:
    """Eq. 1 of every tap, with the backbone framing of the module docstring.

    Args:
        model: a Backbone (in eval mode; it runs where its parameters are, ``waves`` are moved).
        waves: (B, S) equal-length waveforms at ``model.sample_rate``.
        taps: layers (default :func:`default_taps`).
        max_dim: optional cap on a layer's C * F; ``None`` = the paper.
        token_mode: token models (AST) only: ``cls`` (the paper's [CLS] embedding) or
            ``mean_cls_dist`` (EVAR's AST representation, the baseline row).
    Returns:
        {tap: (B, D_tap, T_o)}.
    """
    if waves.dim() != 2:
        raise FusionError(f"layer_features: waves must be (B, S), got {tuple(waves.shape)}")
    taps = model._check_taps(list(taps) if taps is not None else default_taps(model))
    family = backbone_family(model)
    device = _model_device(model)
    waves = waves if device is None else waves.to(device)
    b = waves.shape[0]
    out: dict[Tap, torch.Tensor] = {}
    if family == "panns":
        t_out = panns_time_frames(model, waves.shape[1])
        for tap, z in model.forward_features(waves, taps=taps).items():
            out[tap] = (eq1_time_features(z, t_out, max_dim=max_dim) if z.dim() == 4
                        else repeat_time(z, t_out))
        return out
    if family in ("vggish", "crepe"):
        ex = torch.stack([model.prepare(w) for w in waves])  # (B, E, ...)
        e = ex.shape[1]
        feats = model.forward_features(ex.reshape(b * e, *ex.shape[2:]), taps=taps)
        for tap, z in feats.items():
            if family == "vggish":
                t_seg = VGGISH_FRAMES
                f = (eq1_time_features(z, t_seg, max_dim=max_dim) if z.dim() == 4
                     else repeat_time(z, t_seg))  # (B*E, D, 6)
                d = f.shape[1]
                out[tap] = f.reshape(b, e, d, t_seg).permute(0, 2, 1, 3).reshape(b, d, e * t_seg)
            else:  # crepe: (B*E, C, L, 1) or (B*E, 360); one frame = one time step
                if z.dim() == 4:
                    # (B*E, C, L, 1): the within-frame axis L plays the frequency role
                    z = eq1_time_features(z, 1, time_dim=3, freq_dim=2, max_dim=max_dim)[..., 0]
                out[tap] = z.reshape(b, e, -1).transpose(1, 2)  # (B, D, E)
        return out
    window = getattr(model, "input_samples", None)
    if window is not None and waves.shape[1] > window:
        return _windowed_features(model, waves, window, taps, max_dim, token_mode)
    # generic: taps already (B, D) (AST: the [CLS] token, as the paper) or (B, C, T, F)
    kw = {"token_mode": token_mode} if is_token_model(model) else {}
    for tap, z in model.forward_features(model.prepare(waves), taps=taps, **kw).items():
        out[tap] = repeat_time(z, 1) if z.dim() == 2 else eq1_time_features(
            z, z.shape[2], max_dim=max_dim)
    return out


def _windowed_features(model: Backbone, waves: torch.Tensor, window: int, taps: Sequence[Tap],
                       max_dim: int | None, token_mode: str = "cls") -> dict[Tap, torch.Tensor]:
    """A clip longer than the one window a fixed-input model takes (an AST built for
    ``input_tdim`` frames), framed as VGGish frames its 0.96 s examples: consecutive windows of
    ``window`` samples, each one time step of Eq. 1, so Eq. 3's mean and max run over the windows.
    A last window shorter than half a window is dropped (VGGish drops any tail); one that is
    longer is padded by the model's front end. (B, S) -> {tap: (B, D_tap, windows)}."""
    starts = [s for s in range(0, waves.shape[1], window) if waves.shape[1] - s >= window / 2 or s == 0]
    steps = [layer_features(model, waves[:, s:s + window], taps, max_dim, token_mode)
             for s in starts]
    return {t: torch.cat([step[t] for step in steps], dim=2) for t in steps[0]}


def layer_embeddings(model: Backbone, waves: torch.Tensor, taps: Sequence[Tap] | None = None,
                     max_dim: int | None = None, token_mode: str = "cls") -> dict[Tap, torch.Tensor]:
    """(B, S) waveforms -> {tap: (B, D_tap)}: Eq. 3 of :func:`layer_features`."""
    return {t: eq3_pool(f) for t, f in layer_features(model, waves, taps, max_dim, token_mode).items()}
