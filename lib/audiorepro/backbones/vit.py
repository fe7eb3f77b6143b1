"""Vision-transformer building blocks shared by AST and PaSST (timm-compatible key names).

The module names reproduce timm's ``VisionTransformer`` so that the official AST and PaSST
checkpoints load with ``strict=True``: ``patch_embed.proj``, ``blocks.N.norm1``,
``blocks.N.attn.qkv``, ``blocks.N.attn.proj``, ``blocks.N.norm2``, ``blocks.N.mlp.fc1``,
``blocks.N.mlp.fc2``, ``norm``. Attention uses
:func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels on CPU and GPU) while
keeping the fused ``qkv`` projection of timm.

Also here: token pooling for layer taps (:func:`pool_tokens`), the shared tap loop
(:func:`run_blocks`), the lazy front end (:class:`PresetFrontend`) and size variants
(:func:`scale_dims`).

Shapes: B batch, N tokens (2 prefix tokens CLS, DIST + patches), D embedding width.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from functools import partial
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import CheckpointError, LoadReport, load_checkpoint, read_state_dict

#: Token pooling modes of :func:`pool_tokens` (``"tokens"`` returns the full (B, N, D) sequence).
TOKEN_MODES = ("cls", "dist", "mean_cls_dist", "mean_patches", "tokens")

#: LayerNorm of the transformer trunk (timm ViT/DeiT and PaSST use eps=1e-6).
TrunkNorm = partial(nn.LayerNorm, eps=1e-6)


def to_2tuple(v: int | Sequence[int], name: str = "value") -> tuple[int, int]:
    """``16 -> (16, 16)``; ``(16, 10) -> (16, 10)``; anything else -> ValueError naming ``name``."""
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(i) for i in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return v  # type: ignore[return-value]


def conv_out_size(size: int, kernel: int, stride: int) -> int:
    """Output length of an unpadded convolution: ``(size - kernel) // stride + 1``."""
    return (size - kernel) // stride + 1


class PatchEmbed(nn.Module):
    """Overlapping 2-D patches by a strided convolution (timm key ``patch_embed.proj``).

    (B, C, H, W) -> (B, D, H', W') with ``H' = (H - ph) // sh + 1`` (no flattening: AST flattens,
    PaSST adds separable frequency/time positions first).
    """

    def __init__(self, in_chans: int = 1, embed_dim: int = 768, patch_size: int | Sequence[int] = 16,
                 stride: int | Sequence[int] = 16) -> None:
        super().__init__()
        self.patch_size = to_2tuple(patch_size, "patch_size")
        self.stride = to_2tuple(stride, "stride")
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.stride)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid (H', W') of an (H, W) input."""
        return (conv_out_size(height, self.patch_size[0], self.stride[0]),
                conv_out_size(width, self.patch_size[1], self.stride[1]))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, D, H', W')."""
        if x.dim() != 4:
            raise ValueError(f"PatchEmbed expects (B, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[-2] < self.patch_size[0] or x.shape[-1] < self.patch_size[1]:
            raise ValueError(f"input {tuple(x.shape)} is smaller than one patch {self.patch_size}")
        return self.proj(x)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (timm names ``qkv``, ``proj``).

    Uses :func:`torch.nn.functional.scaled_dot_product_attention`; (B, N, D) -> (B, N, D).
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = float(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        """(B, N, D) -> (B, N, D)."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                                   # each (B, H, N, hd)
        x = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(b, n, d)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout (timm ``Mlp``); (..., D) -> (..., D)."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Block(nn.Module):
    """Pre-norm transformer block (timm ``Block``): (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 norm_layer: Callable[[int], nn.Module] = TrunkNorm) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def make_blocks(depth: int, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop: float = 0.0,
                attn_drop: float = 0.0, drop_path_rate: float = 0.0) -> nn.Sequential:
    """``depth`` blocks with the linear stochastic-depth rule of timm (0 -> ``drop_path_rate``)."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    rates = [drop_path_rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
    return nn.Sequential(*[Block(dim, num_heads, mlp_ratio, qkv_bias=True, drop=drop,
                                 attn_drop=attn_drop, drop_path=r) for r in rates])


def init_vit_weights(module: nn.Module) -> None:
    """timm's default ViT init: trunc-normal(0.02) Linear weights, zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ---------------------------------------------------------------------------------- taps
def pool_tokens(x: Tensor, mode: str, num_prefix: int = 2) -> Tensor:
    """Pool a token sequence.

    Args:
        x: (B, N, D) tokens; the first ``num_prefix`` are CLS (index 0) and DIST (index 1).
        mode: ``cls`` -> x[:, 0]; ``dist`` -> x[:, 1]; ``mean_cls_dist`` -> (x[:, 0] + x[:, 1]) / 2
            (the AST/PaSST embedding); ``mean_patches`` -> mean over the patch tokens;
            ``tokens`` -> x unchanged.

    Returns:
        (B, D), or (B, N, D) for ``tokens``.
    """
    if mode == "cls":
        return x[:, 0]
    if mode == "dist":
        if num_prefix < 2:
            raise ValueError("token_mode='dist' needs a distillation token")
        return x[:, 1]
    if mode == "mean_cls_dist":
        if num_prefix < 2:
            raise ValueError("token_mode='mean_cls_dist' needs a distillation token")
        return (x[:, 0] + x[:, 1]) / 2
    if mode == "mean_patches":
        if x.shape[1] <= num_prefix:
            raise ValueError("token_mode='mean_patches': the sequence has no patch tokens")
        return x[:, num_prefix:].mean(dim=1)
    if mode == "tokens":
        return x
    raise ValueError(f"unknown token_mode {mode!r}; choose one of {TOKEN_MODES}")


def check_taps(taps: Iterable[int] | None, depth: int) -> list[int]:
    """Validate 1-based block indices (0 = the embedded input before block 1); None -> 1..depth."""
    if taps is None:
        return list(range(1, depth + 1))
    if isinstance(taps, int):
        taps = [taps]
    out = []
    for t in taps:
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= depth:
            raise ValueError(f"layer tap {t!r} out of range: blocks are numbered 1..{depth} "
                             f"(0 = patch embedding output)")
        out.append(int(t))
    if not out:
        raise ValueError("taps is empty")
    return sorted(set(out))


def run_blocks(tokens: Tensor, blocks: nn.Sequential, norm: nn.Module, taps: Sequence[int],
               token_mode: str = "mean_cls_dist", apply_norm: bool = True,
               num_prefix: int = 2) -> dict[int, Tensor]:
    """Run ``blocks`` on ``tokens`` and collect pooled outputs of the tapped blocks.

    Args:
        tokens: (B, N, D) embedded sequence (input of block 1).
        taps: sorted 1-based block indices (0 = ``tokens`` itself); blocks after the deepest tap
            are not run.
        apply_norm: apply the trunk's final LayerNorm ``norm`` to every tapped output (the
            authors of the layer-fusion paper pool after the final LayerNorm; tap ``depth`` with
            ``mean_cls_dist`` then equals the model's embedding).

    Returns:
        {tap: (B, D)} or {tap: (B, N, D)} for ``token_mode="tokens"``.
    """
    if token_mode not in TOKEN_MODES:
        raise ValueError(f"unknown token_mode {token_mode!r}; choose one of {TOKEN_MODES}")
    wanted = set(taps)
    out: dict[int, Tensor] = {}

    def grab(i: int, x: Tensor) -> None:
        if i in wanted:
            out[i] = pool_tokens(norm(x) if apply_norm else x, token_mode, num_prefix)

    x = tokens
    grab(0, x)
    last = max(wanted)
    for i, blk in enumerate(blocks, start=1):
        if i > last:
            break
        x = blk(x)
        grab(i, x)
    return out


# ---------------------------------------------------------------------------------- front end
class PresetFrontend:
    """Lazy front end from :func:`audiorepro.frontends.make_frontend` in a backbone's layout.

    Waves (B, S) or (S,) -> ``"time_major"`` (B, frames, n_mels) for AST, or ``"channel"``
    (B, 1, n_mels, frames) for PaSST. Built on first call (on the wave's device) so that
    importing a backbone does not import the front ends.
    """

    def __init__(self, preset: str, layout: str, **overrides) -> None:
        if layout not in ("time_major", "channel"):
            raise ValueError(f"layout must be 'time_major' or 'channel', got {layout!r}")
        self.preset, self.layout, self.overrides = preset, layout, dict(overrides)
        self._module: nn.Module | None = None

    def module(self, device: torch.device | str = "cpu") -> nn.Module:
        """The underlying :class:`audiorepro.frontends.FrontEnd` (eval mode) on ``device``."""
        if self._module is None:
            from audiorepro.frontends import make_frontend  # lazy: avoids an import cycle
            self._module = make_frontend(self.preset, time_major=self.layout == "time_major",
                                         **self.overrides)
        return self._module.to(device)

    def __call__(self, wave: Tensor) -> Tensor:
        single = wave.dim() == 1
        feats = self.module(wave.device)(wave.unsqueeze(0) if single else wave)
        if self.layout == "channel":
            feats = feats.unsqueeze(1)
        return feats[0] if single else feats

    def __repr__(self) -> str:
        return f"PresetFrontend({self.preset!r}, layout={self.layout!r}, {self.overrides})"


def scale_dims(full: tuple[int, int, int], scale: str | float | None,
               presets: Mapping[str, tuple[int, int, int]], embed_dim: int | None = None,
               depth: int | None = None, num_heads: int | None = None) -> tuple[int, int, int]:
    """(embed_dim, depth, num_heads) of a size variant.

    ``scale``: a preset name, or a float width multiplier (width rounded to a multiple of 64,
    depth kept); explicit ``embed_dim`` / ``depth`` / ``num_heads`` override (heads default to
    embed_dim // 64 when only the width is given).
    """
    d, n, h = full
    if isinstance(scale, str):
        if scale not in presets:
            raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(presets)} or a float")
        d, n, h = presets[scale]
    elif scale is not None and float(scale) != 1.0:
        if not float(scale) > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        d = max(64, int(round(full[0] * float(scale) / 64)) * 64)
        h = d // 64
    if embed_dim is not None:
        d = int(embed_dim)
        h = max(1, d // 64)
    if depth is not None:
        n = int(depth)
    if num_heads is not None:
        h = int(num_heads)
    if d % h:
        raise ValueError(f"embed_dim={d} is not divisible by num_heads={h}")
    return d, n, h


def build_sized(model_cls: type, name: str, cfg: dict, scale: str | float | None,
                presets: Mapping[str, tuple[int, int, int]], embed_dim: int | None,
                depth: int | None, num_heads: int | None, checkpoint: object | None,
                num_classes: int | None, device: object | None, kwargs: dict) -> nn.Module:
    """Build ``model_cls(name=name, **cfg)`` at a size variant (:func:`scale_dims`), then load
    ``checkpoint`` (only allowed at full size) and move to ``device``: shared by AST and PaSST."""
    cfg = dict(cfg)
    full = (cfg["embed_dim"], cfg["depth"], cfg["num_heads"])
    cfg["embed_dim"], cfg["depth"], cfg["num_heads"] = scale_dims(
        full, scale, presets, embed_dim, depth, num_heads)
    if checkpoint is not None and (cfg["embed_dim"], cfg["depth"], cfg["num_heads"]) != full:
        raise ValueError(f"checkpoint {os.fspath(checkpoint)} is for the full-size {name}; "
                         f"do not combine it with scale/embed_dim/depth/num_heads")
    if num_classes is not None:
        cfg["num_classes"] = int(num_classes)
    cfg.update(kwargs)
    model = model_cls(name=name, **cfg)
    if checkpoint is not None:
        model.load_checkpoint(checkpoint)
    if device is not None:
        model = model.to(device)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def load_official(model: nn.Module, source: str | os.PathLike | Mapping[str, Tensor],
                  adapt: Callable[[dict[str, Tensor]], None] | None = None) -> LoadReport:
    """Strictly load an official checkpoint into ``model`` (base :func:`load_checkpoint`).

    Reads the file (unwrapping ``{'model': ...}`` style wrappers), strips a ``module.`` prefix
    carried by every key (DataParallel), lets ``adapt`` edit the dict in place (position
    embeddings for another grid), then loads with ``strict=True``. Raises
    :class:`CheckpointError` naming the file and the missing / unexpected / mis-shaped keys.
    """
    sd, where = read_state_dict(source)
    if sd and all(k.startswith("module.") for k in sd):
        sd = OrderedDict((k[len("module."):], v) for k, v in sd.items())
    if adapt is not None:
        adapt(sd)
    try:
        return load_checkpoint(model, sd, strict=True)
    except CheckpointError as exc:
        raise CheckpointError(str(exc).replace("<state dict>", where)) from exc
