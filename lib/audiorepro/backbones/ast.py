"""Audio Spectrogram Transformer (AST, Gong et al. 2021), checkpoint-compatible.

Reproduces ``ASTModel`` of YuanGongND/ast (``src/models/ast_models.py``, model_size
``base384``): a DeiT-base distilled trunk ``v`` (timm key names, including the unused DeiT
heads ``v.head`` / ``v.head_dist`` [1000, 768] that the released checkpoints carry) and
``mlp_head = Sequential(LayerNorm, Linear)``. State-dict keys, their order and shapes equal the
reference manifest ``ast_base384_f10_t10_527`` (88,132,063 parameters), so the released
``audioset_10_10_0.4593.pth`` (keys prefixed ``module.``) loads with ``strict=True`` through
:meth:`ASTModel.load_checkpoint`.

Input: (B, T, 128) normalised Kaldi fbank, ``(fbank + 4.2677) / (4.5690 * 2)`` (front-end preset
``kaldi_fbank_128``), T = ``input_tdim`` (1024 frames = 10.24 s).

Layer taps (:meth:`ASTModel.forward_features`): blocks are numbered 1..12 as in the layer-fusion
paper; by default each tapped block output goes through the final LayerNorm ``v.norm`` and is
pooled as the mean of the CLS and distillation tokens (what the authors' code does for the last
layer, and what AST uses as its embedding).
"""
from __future__ import annotations

import math
import os
import re
from typing import Iterable, Mapping

import torch
from torch import Tensor, nn

from .base import Backbone, LoadReport
from .vit import (build_sized, PatchEmbed, PresetFrontend, TrunkNorm, check_taps, init_vit_weights,
                  load_official, make_blocks, run_blocks)

__all__ = ["ASTModel", "DistilledViT", "build_ast", "adapt_pos_embed", "AST_PRESETS", "AST_SCALES"]

#: Full-size configurations by name (the official checkpoint's architecture).
AST_PRESETS: dict[str, dict] = {
    "ast_base384_f10_t10_527": dict(num_classes=527, fstride=10, tstride=10, input_fdim=128,
                                    input_tdim=1024, embed_dim=768, depth=12, num_heads=12),
}
AST_PRESETS["ast"] = AST_PRESETS["ast_base384_f10_t10_527"]

#: Width/depth presets for ``build_ast(..., scale=...)``: (embed_dim, depth, num_heads).
AST_SCALES: dict[str, tuple[int, int, int]] = {
    "base": (768, 12, 12),
    "small": (384, 12, 6),
    "tiny": (192, 12, 3),
    "cpu": (192, 4, 3),
}

_NAME_RE = re.compile(r"^ast_base384_f(\d+)_t(\d+)_(\d+)$")


class DistilledViT(nn.Module):
    """DeiT distilled ViT trunk as timm builds it (AST's ``v``); key order cls_token, pos_embed,
    dist_token, patch_embed, blocks, norm, head, head_dist.

    ``forward`` is not defined: :class:`ASTModel` drives the parts (the DeiT heads are unused).
    """

    def __init__(self, grid: tuple[int, int], fstride: int, tstride: int, patch_size: int = 16,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 deit_classes: int = 1000) -> None:
        super().__init__()
        self.grid = tuple(grid)
        n_patches = self.grid[0] * self.grid[1]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 2, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.patch_embed = PatchEmbed(1, embed_dim, patch_size, (fstride, tstride))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = make_blocks(depth, embed_dim, num_heads, mlp_ratio, drop_rate, attn_drop_rate,
                                  drop_path_rate)
        self.norm = TrunkNorm(embed_dim)
        # DeiT ImageNet heads: never called by AST, but present in the released checkpoints.
        self.head = nn.Linear(embed_dim, deit_classes) if deit_classes else None
        self.head_dist = nn.Linear(embed_dim, deit_classes) if deit_classes else None


class ASTModel(Backbone):
    """AST: (B, T, F) normalised fbank -> {"logits": (B, C), "embedding": (B, D)}.

    Args:
        num_classes: C, classes of ``mlp_head``.
        fstride, tstride: patch strides (16x16 patches) along frequency and time.
        input_fdim, input_tdim: F mel bins and T frames the positional embedding is built for.
        embed_dim, depth, num_heads: trunk size (768 / 12 / 12 for the released model).
        drop_rate, attn_drop_rate, drop_path_rate: regularisation (0 in the official eval).
        deit_heads: keep the unused DeiT heads (needed for ``strict`` loading of the official
            checkpoints).
        name: preset name (recorded for results).

    Attributes: ``frontend_name = "kaldi_fbank_128"`` and ``frontend`` (waves (B, S) at 16 kHz ->
    (B, input_tdim, 128)), ``embed_dim``, ``depth``, ``grid`` (patch grid F' x T'),
    ``tap_names = [1..depth]``, ``num_prefix_tokens = 2``.
    """

    frontend_name = "kaldi_fbank_128"
    input_kind = "logmel"
    sample_rate = 16000
    num_prefix_tokens = 2

    def __init__(self, num_classes: int = 527, fstride: int = 10, tstride: int = 10,
                 input_fdim: int = 128, input_tdim: int = 1024, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0, deit_heads: bool = True,
                 name: str = "ast_base384_f10_t10_527",
                 norm_stats: tuple[float, float] | None = None) -> None:
        super().__init__()
        patch = 16
        if input_fdim < patch or input_tdim < patch:
            raise ValueError(f"AST input {input_fdim} x {input_tdim} is smaller than a 16x16 patch")
        grid = ((input_fdim - patch) // fstride + 1, (input_tdim - patch) // tstride + 1)
        self.name = name
        self.num_classes = int(num_classes)
        self.input_fdim, self.input_tdim = int(input_fdim), int(input_tdim)
        self.embed_dim, self.depth, self.num_heads = int(embed_dim), int(depth), int(num_heads)
        self.grid = grid
        self.tap_names = list(range(1, self.depth + 1))
        # norm_stats (mean, std) of the fbank replace AudioSet's, e.g. a task's own (EVAR does)
        stats = {} if norm_stats is None else {"norm_mean": float(norm_stats[0]),
                                                "norm_std": float(norm_stats[1])}
        self.frontend = PresetFrontend(self.frontend_name, "time_major", target_frames=input_tdim,
                                       **stats)
        self.v = DistilledViT(grid, fstride, tstride, patch, embed_dim, depth, num_heads,
                              drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                              drop_path_rate=drop_path_rate, deit_classes=1000 if deit_heads else 0)
        self.mlp_head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, num_classes))
        self.reset_parameters()

    # ------------------------------------------------------------------ init / loading
    def reset_parameters(self) -> None:
        """Random init as timm/AST: trunc-normal(0.02) tokens, positions and Linear weights."""
        for p in (self.v.cls_token, self.v.dist_token, self.v.pos_embed):
            nn.init.trunc_normal_(p, std=0.02)
        self.apply(init_vit_weights)

    @property
    def input_samples(self) -> int:
        """Waveform samples that fill the ``input_tdim`` frames of one forward pass (Kaldi
        framing: window + (input_tdim - 1) x shift; 16 kHz, 25 ms, 10 ms: 1024 frames = 10.25 s)."""
        fe = self.frontend.module(next(self.parameters()).device)
        return int(fe.win + (self.input_tdim - 1) * fe.shift)

    def load_checkpoint(self, source: str | os.PathLike | Mapping[str, Tensor],
                        adapt_pos_embed: bool = True) -> LoadReport:
        """Load official AST weights (``module.`` prefix stripped) with ``strict=True``.

        If the checkpoint's position embedding was made for another patch grid (e.g. the
        10.24 s AudioSet model loaded into a model built with ``input_tdim=512``), it is cut or
        interpolated as the AST code does (:func:`adapt_pos_embed`) when ``adapt_pos_embed``.
        Raises :class:`~audiorepro.backbones.base.CheckpointError` naming the file and
        the missing / unexpected / mis-shaped keys.
        """
        def adapt(sd: dict[str, Tensor]) -> None:
            key = "v.pos_embed"
            if adapt_pos_embed and key in sd and sd[key].shape != self.v.pos_embed.shape \
                    and sd[key].dim() == 3 and sd[key].shape[2] == self.embed_dim:
                old_grid = _guess_grid(sd[key].shape[1] - 2, self.grid, str(source))
                sd[key] = adapt_pos_embed_fn(sd[key], old_grid, self.grid)

        return load_official(self, source, adapt)

    def reset_classifier(self, num_classes: int) -> None:
        """New randomly initialised ``mlp_head.1`` with ``num_classes`` outputs."""
        old = self.mlp_head[1]
        new = nn.Linear(self.embed_dim, num_classes).to(old.weight.device, old.weight.dtype)
        init_vit_weights(new)
        self.mlp_head[1] = new
        self.num_classes = int(num_classes)

    def patch_grid(self, frames: int | None = None) -> tuple[int, int]:
        """Patch grid (F', T') of the input (AST takes exactly ``input_tdim`` frames)."""
        if frames is not None and frames != self.input_tdim:
            raise ValueError(f"{self.name} takes {self.input_tdim} frames, not {frames}")
        return self.grid

    def tap_modules(self) -> dict[int, nn.Module]:
        """Block k (1-based) -> ``v.blocks[k-1]`` (raw (B, N, D) outputs via the base hooks)."""
        return {k: self.v.blocks[k - 1] for k in self.tap_names}

    def example_input(self, batch_size: int = 1, seconds: float = 10.24) -> Tensor:
        """Random (B, input_tdim, F) input (AST takes a fixed number of frames)."""
        p = self.v.pos_embed
        return torch.randn(batch_size, self.input_tdim, self.input_fdim, device=p.device, dtype=p.dtype)

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 3 or x.shape[2] != self.input_fdim or x.shape[1] != self.input_tdim:
            raise ValueError(
                f"{self.name}: expected input (B, T={self.input_tdim}, F={self.input_fdim}) "
                f"(normalised Kaldi fbank, frames x mel bins), got {tuple(x.shape)}; pad/crop the "
                f"frames or build the model with input_tdim={x.shape[1] if x.dim() == 3 else '?'}")

    def tokens(self, x: Tensor) -> Tensor:
        """(B, T, F) fbank -> (B, 2 + F'T', D) embedded sequence (input of block 1)."""
        self._check_input(x)
        x = x.unsqueeze(1).transpose(2, 3)                          # (B, 1, F, T)
        x = self.v.patch_embed(x).flatten(2).transpose(1, 2)        # (B, F'T', D)
        b = x.shape[0]
        prefix = torch.cat((self.v.cls_token.expand(b, -1, -1),
                            self.v.dist_token.expand(b, -1, -1)), dim=1)
        x = torch.cat((prefix, x), dim=1) + self.v.pos_embed
        return self.v.pos_drop(x)

    def forward_features(self, x: Tensor, taps: Iterable[int] | int | None = None,
                         token_mode: str = "mean_cls_dist",
                         apply_norm: bool = True) -> dict[int, Tensor]:
        """Pooled outputs of transformer blocks.

        Args:
            x: (B, T, F) normalised fbank.
            taps: 1-based block indices (1..depth; 0 = embedded input); None = all blocks.
            token_mode: ``cls`` | ``dist`` | ``mean_cls_dist`` | ``mean_patches`` -> (B, D);
                ``tokens`` -> the full (B, N, D) sequence.
            apply_norm: pass each tapped output through the final LayerNorm ``v.norm`` first.

        Returns:
            {tap: (B, D) or (B, N, D)}; blocks after the deepest tap are skipped.
        """
        taps = check_taps(taps, self.depth)
        return run_blocks(self.tokens(x), self.v.blocks, self.v.norm, taps, token_mode,
                          apply_norm, self.num_prefix_tokens)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """(B, T, F) -> {"logits": (B, C) pre-sigmoid, "embedding": (B, D) mean of CLS/DIST}."""
        emb = self.forward_features(x, [self.depth])[self.depth]
        return {"logits": self.mlp_head(emb), "embedding": emb}


def _guess_grid(n_patches: int, new_grid: tuple[int, int], where: str) -> tuple[int, int]:
    """Patch grid of a checkpoint's position embedding: frequency rows as in the model if they
    divide ``n_patches`` (AST audio checkpoints: 12 rows), else the 24x24 ImageNet square."""
    if n_patches % new_grid[0] == 0:
        return (new_grid[0], n_patches // new_grid[0])
    side = int(round(math.sqrt(n_patches)))
    if side * side == n_patches:
        return (side, side)
    raise ValueError(f"{where}: cannot infer the patch grid of a position embedding with "
                     f"{n_patches} patches for a model with grid {new_grid}")


def _fit_axis(grid: Tensor, axis: int, new: int) -> Tensor:
    """Centre-crop (smaller) or bilinearly interpolate (larger) one axis of (1, D, F, T)."""
    old = grid.shape[axis]
    if new == old:
        return grid
    if new < old:
        start = old // 2 - new // 2
        return grid.narrow(axis, start, new)
    size = list(grid.shape[2:])
    size[axis - 2] = new
    return torch.nn.functional.interpolate(grid, size=tuple(size), mode="bilinear")


def adapt_pos_embed(pos_embed: Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int],
                    num_prefix: int = 2) -> Tensor:
    """Fit an AST position embedding to another patch grid, as the AST code does.

    Time (then frequency) is centre-cropped when the new grid is smaller and bilinearly
    interpolated when larger; the CLS/DIST positions are kept.

    Args:
        pos_embed: (1, num_prefix + F*T, D) with patches in row-major (frequency, time) order.
        old_grid: (F, T); new_grid: (F', T').

    Returns:
        (1, num_prefix + F'*T', D).
    """
    f, t = old_grid
    if pos_embed.shape[1] != num_prefix + f * t:
        raise ValueError(f"pos_embed has {pos_embed.shape[1]} positions, expected "
                         f"{num_prefix} + {f}x{t}")
    d = pos_embed.shape[2]
    prefix, patches = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    grid = patches.transpose(1, 2).reshape(1, d, f, t)
    grid = _fit_axis(grid, 3, new_grid[1])
    grid = _fit_axis(grid, 2, new_grid[0])
    patches = grid.reshape(1, d, new_grid[0] * new_grid[1]).transpose(1, 2)
    return torch.cat((prefix, patches), dim=1)


adapt_pos_embed_fn = adapt_pos_embed


def build_ast(name: str = "ast_base384_f10_t10_527", *, checkpoint: str | os.PathLike | None = None,
              scale: str | float | None = None, embed_dim: int | None = None, depth: int | None = None,
              num_heads: int | None = None, num_classes: int | None = None,
              device: str | torch.device | None = None, **kwargs) -> ASTModel:
    """Build an AST by name (registry entry point).

    Args:
        name: ``ast_base384_f10_t10_527`` (alias ``ast``) or any ``ast_base384_f{F}_t{T}_{C}``.
        checkpoint: official weights to load (full size only; ``module.`` prefix handled).
        scale: CPU-sized variants of the same architecture: ``base`` (default), ``small``,
            ``tiny``, ``cpu`` (192 wide, 4 blocks, 3 heads) or a float width multiplier (width
            rounded to a multiple of 64, heads = width // 64); ``embed_dim`` / ``depth`` /
            ``num_heads`` override single values (heads default to embed_dim // 64).
        num_classes: classes of the head (default: the preset's, 527).
        device: where to put the model.
        **kwargs: other :class:`ASTModel` arguments (``input_tdim``,
            ``drop_path_rate`` ...).
    """
    if name in AST_PRESETS:
        cfg = dict(AST_PRESETS[name])
    elif (m := _NAME_RE.match(name)):
        cfg = dict(AST_PRESETS["ast"], fstride=int(m[1]), tstride=int(m[2]), num_classes=int(m[3]))
    else:
        raise KeyError(f"unknown AST model name {name!r}; known: {sorted(AST_PRESETS)} or "
                       f"'ast_base384_f<fstride>_t<tstride>_<classes>'")
    return build_sized(ASTModel, name, cfg, scale, AST_SCALES, embed_dim, depth, num_heads,
                       checkpoint, num_classes, device, kwargs)
