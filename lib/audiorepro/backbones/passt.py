"""PaSST (Koutini et al. 2022, Patchout faSt Spectrogram Transformer), checkpoint-compatible.

Reproduces ``PaSST`` of kkoutini/PaSST (``models/passt.py``; hear21passt for PaSST-L): keys
``cls_token, dist_token, new_pos_embed [1,2,D], freq_new_pos_embed [1,D,F',1],
time_new_pos_embed [1,D,1,T'], patch_embed.proj, blocks.N.*, norm, head.0 (LayerNorm),
head.1 (Linear), head_dist`` in the official order, so released ``.pt`` files load with
``strict=True`` (:meth:`PaSST.load_checkpoint`).

Input: (B, 1, 128, T) log-mel of the ``passt`` front-end preset (32 kHz, hop 320 -> 100 frames/s).
As in the official code the positional grid is ``(input_fdim // fstride, input_tdim // tstride)``;
shorter inputs use the first T' time positions (a random window in training), longer inputs are
cut with a warning - use :meth:`PaSST.embed_long` to embed them as averaged segments.

Structured patchout (``s_patchout_t`` time columns / ``s_patchout_f`` frequency rows dropped)
and unstructured patchout (``u_patchout`` patches dropped) act in ``train()`` mode only.
"""
from __future__ import annotations

import os
import warnings
from collections import defaultdict
from typing import Iterable, Mapping

import torch
from torch import Tensor, nn

from .base import Backbone, LoadReport
from .vit import (build_sized, PatchEmbed, PresetFrontend, TrunkNorm, check_taps, conv_out_size,
                  init_vit_weights, load_official, make_blocks, run_blocks)

__all__ = ["PaSST", "build_passt", "PASST_PRESETS", "PASST_SCALES"]

_S = dict(num_classes=527, input_fdim=128, patch_size=16, embed_dim=768, num_heads=12)

#: Full-size configurations by name.
PASST_PRESETS: dict[str, dict] = {
    # PaSST-S, stride 10, 10 s (passt-s-f128-p16-s10-ap.476-swa.pt)
    "passt_s_swa_p16_s10_128_998_527": dict(_S, fstride=10, tstride=10, input_tdim=998, depth=12),
    # PaSST-N (no overlap), stride 16 (passt-s-f128-p16-s16-ap.468.pt)
    "passt_s_p16_s16_128_1000_527": dict(_S, fstride=16, tstride=16, input_tdim=1000, depth=12),
    # PaSST-S20: time positions for 20 s (passt-s-f128-20sec-p16-s10-ap.474-swa.pt, 2000 frames)
    "passt_s_20sec_p16_s10_128_2000_527": dict(_S, fstride=10, tstride=10, input_tdim=2000,
                                               depth=12),
    # PaSST-S, knowledge-distilled release (passt-s-kd-ap.486.pt): the SWA model's layout
    "passt_s_kd_p16_s10_128_998_527": dict(_S, fstride=10, tstride=10, input_tdim=998, depth=12),
    # PaSST-L: depth 7 (hear21passt passt_l_kd_p16_128_ap47)
    "passt_l_kd_p16_s10_128_998_527": dict(_S, fstride=10, tstride=10, input_tdim=998, depth=7),
}
PASST_PRESETS["passt_s"] = PASST_PRESETS["passt_s_swa_p16_s10_128_998_527"]
PASST_PRESETS["passt_n"] = PASST_PRESETS["passt_s_p16_s16_128_1000_527"]
PASST_PRESETS["passt_s20"] = PASST_PRESETS["passt_s_20sec_p16_s10_128_2000_527"]
PASST_PRESETS["passt_l"] = PASST_PRESETS["passt_l_kd_p16_s10_128_998_527"]

#: (embed_dim, depth, num_heads) for ``build_passt(..., scale=...)``.
PASST_SCALES: dict[str, tuple[int, int, int]] = {
    "base": (768, 12, 12),
    "light": (768, 7, 12),
    "small": (384, 12, 6),
    "tiny": (192, 12, 3),
    "cpu": (192, 4, 3),
}


class PaSST(Backbone):
    """PaSST: (B, 1, F, T) log-mel -> {"logits": (B, C), "embedding": (B, D)}.

    Args:
        num_classes: C.
        input_fdim, input_tdim: F mel bins and T frames the positional encodings cover.
        patch_size, fstride, tstride: 16x16 patches and their strides.
        embed_dim, depth, num_heads: trunk size (768 / 12 / 12 for PaSST-S, depth 7 for PaSST-L).
        s_patchout_t, s_patchout_f: structured patchout - time columns / frequency rows of the
            patch grid dropped per batch in training.
        u_patchout: unstructured patchout - patches dropped from the flattened sequence.
        drop_rate, attn_drop_rate, drop_path_rate: regularisation.
        name: preset name.

    Attributes: ``frontend_name = "passt"`` and ``frontend`` (waves (B, S) at 32 kHz ->
    (B, 1, 128, frames)), ``grid`` = positional grid (F', T'), ``tap_names = [1..depth]``,
    ``num_prefix_tokens = 2``.
    """

    frontend_name = "passt"
    input_kind = "logmel"
    sample_rate = 32000
    num_prefix_tokens = 2

    def __init__(self, num_classes: int = 527, input_fdim: int = 128, input_tdim: int = 998,
                 patch_size: int = 16, fstride: int = 10, tstride: int = 10, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12, s_patchout_t: int = 0, s_patchout_f: int = 0,
                 u_patchout: int = 0, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, name: str = "passt_s_swa_p16_s10_128_998_527") -> None:
        super().__init__()
        # the official positional grid (img // stride); the frequency axis must equal the conv's
        grid = (input_fdim // fstride, input_tdim // tstride)
        f_conv = conv_out_size(input_fdim, patch_size, fstride)
        if f_conv != grid[0]:
            raise ValueError(f"PaSST: input_fdim={input_fdim} with fstride={fstride} gives {f_conv} "
                             f"patch rows but {grid[0]} frequency positions; choose input_fdim so "
                             f"that (F - {patch_size}) // fstride + 1 == F // fstride")
        self.name = name
        self.num_classes = int(num_classes)
        self.input_fdim, self.input_tdim = int(input_fdim), int(input_tdim)
        self.patch_size, self.fstride, self.tstride = int(patch_size), int(fstride), int(tstride)
        self.embed_dim, self.depth, self.num_heads = int(embed_dim), int(depth), int(num_heads)
        self.grid = grid
        self.tap_names = list(range(1, self.depth + 1))
        self.frontend = PresetFrontend(self.frontend_name, "channel")
        self.s_patchout_t, self.s_patchout_f, self.u_patchout = s_patchout_t, s_patchout_f, u_patchout

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, embed_dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, grid[0], 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, 1, grid[1]))
        self.patch_embed = PatchEmbed(1, embed_dim, patch_size, (fstride, tstride))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = make_blocks(depth, embed_dim, num_heads, 4.0, drop_rate, attn_drop_rate,
                                  drop_path_rate)
        self.norm = TrunkNorm(embed_dim)
        self.head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, num_classes))
        self.head_dist = nn.Linear(embed_dim, num_classes)   # in checkpoints; forward ignores it
        self.reset_parameters()

    def patch_grid(self, frames: int | None = None) -> tuple[int, int]:
        """Patch grid (F', T') the convolution makes of ``frames`` input frames (default
        ``input_tdim``); T' is cut to the ``grid[1]`` time positions."""
        t = self.patch_embed.grid(self.input_fdim, frames or self.input_tdim)[1]
        return (self.grid[0], min(t, self.grid[1]))

    @property
    def max_frames(self) -> int:
        """Longest input (frames) the time positions cover: ``input_tdim``."""
        return self.input_tdim

    # ------------------------------------------------------------------ init / loading
    def reset_parameters(self) -> None:
        """Random init as the official code (trunc-normal 0.02; zero heads are not used)."""
        for p in (self.new_pos_embed, self.freq_new_pos_embed, self.time_new_pos_embed,
                  self.dist_token, self.cls_token):
            nn.init.trunc_normal_(p, std=0.02)
        self.apply(init_vit_weights)

    def load_checkpoint(self, source: str | os.PathLike | Mapping[str, Tensor],
                        adapt_pos_embed: bool = True) -> LoadReport:
        """Load official PaSST weights with ``strict=True`` (a ``module.`` prefix is stripped).

        With ``adapt_pos_embed``, time positions longer than the model's are cut to the first
        T' (as PaSST does at run time); shorter ones and frequency positions of another size are
        linearly interpolated. Raises ``CheckpointError`` naming the file and the bad keys.
        """
        def adapt(sd: dict[str, Tensor]) -> None:
            if not adapt_pos_embed:
                return
            t_key, f_key = "time_new_pos_embed", "freq_new_pos_embed"
            t = sd.get(t_key)
            if t is not None and t.dim() == 4 and t.shape[1] == self.embed_dim \
                    and t.shape != self.time_new_pos_embed.shape:
                n = self.grid[1]
                sd[t_key] = t[..., :n] if t.shape[-1] >= n else \
                    nn.functional.interpolate(t, size=(1, n), mode="bilinear")
            f = sd.get(f_key)
            if f is not None and f.dim() == 4 and f.shape[1] == self.embed_dim \
                    and f.shape != self.freq_new_pos_embed.shape:
                sd[f_key] = nn.functional.interpolate(f, size=(self.grid[0], 1), mode="bilinear")

        return load_official(self, source, adapt)

    def reset_classifier(self, num_classes: int) -> None:
        """New randomly initialised ``head.1`` and ``head_dist`` with ``num_classes`` outputs."""
        w = self.head[1].weight
        new, dist = (nn.Linear(self.embed_dim, num_classes).to(w.device, w.dtype) for _ in range(2))
        new.apply(init_vit_weights)
        dist.apply(init_vit_weights)
        self.head[1], self.head_dist = new, dist
        self.num_classes = int(num_classes)

    def tap_modules(self) -> dict[int, nn.Module]:
        """Block k (1-based) -> ``blocks[k-1]`` (raw (B, N, D) outputs via the base hooks)."""
        return {k: self.blocks[k - 1] for k in self.tap_names}

    def example_input(self, batch_size: int = 1, seconds: float = 10.0) -> Tensor:
        """Random (B, 1, F, T) log-mel with T = frames of ``seconds`` at hop 320 (32 kHz),
        at most ``input_tdim``."""
        frames = min(self.input_tdim, 1 + (int(seconds * self.sample_rate) - 1) // 320)
        p = self.cls_token
        return torch.randn(batch_size, 1, self.input_fdim, frames, device=p.device, dtype=p.dtype)

    # ------------------------------------------------------------------ forward
    def tokens(self, x: Tensor) -> Tensor:
        """(B, 1, F, T) log-mel -> (B, 2 + n, D) embedded sequence (input of block 1).

        n = F' * T' patches, fewer in training with patchout.
        """
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != self.input_fdim:
            raise ValueError(f"{self.name}: expected input (B, 1, F={self.input_fdim}, T) log-mel, "
                             f"got {tuple(x.shape)}")
        if x.shape[3] < self.patch_size:
            raise ValueError(f"{self.name}: input has {x.shape[3]} frames, fewer than one patch "
                             f"({self.patch_size})")
        x = self.patch_embed(x)                                      # (B, D, F', T')
        b, d, f, t = x.shape
        pos_t = self.time_new_pos_embed
        if t <= pos_t.shape[-1]:
            if self.training and t < pos_t.shape[-1]:
                off = int(torch.randint(1 + pos_t.shape[-1] - t, (1,)))
                pos_t = pos_t[..., off:off + t]
            else:
                pos_t = pos_t[..., :t]
        else:
            warnings.warn(f"{self.name}: {t} patch columns exceed the {pos_t.shape[-1]} time "
                          f"positions; the input is cut to {self.input_tdim} frames "
                          f"(use embed_long for long audio)", stacklevel=3)
            x = x[..., :pos_t.shape[-1]]
            t = pos_t.shape[-1]
        x = x + pos_t + self.freq_new_pos_embed
        if self.training and self.s_patchout_t:
            keep = torch.randperm(t, device=x.device)[:max(t - self.s_patchout_t, 1)].sort().values
            x = x[..., keep]
        if self.training and self.s_patchout_f:
            keep = torch.randperm(f, device=x.device)[:max(f - self.s_patchout_f, 1)].sort().values
            x = x[:, :, keep]
        x = x.flatten(2).transpose(1, 2)                             # (B, n, D)
        if self.training and self.u_patchout:
            n = x.shape[1]
            keep = torch.randperm(n, device=x.device)[:max(n - self.u_patchout, 1)].sort().values
            x = x[:, keep]
        cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1]
        dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:]
        return self.pos_drop(torch.cat((cls, dist, x), dim=1))

    def forward_features(self, x: Tensor, taps: Iterable[int] | int | None = None,
                         token_mode: str = "mean_cls_dist",
                         apply_norm: bool = True) -> dict[int, Tensor]:
        """Pooled outputs of transformer blocks.

        Args:
            x: (B, 1, F, T) log-mel.
            taps: 1-based block indices (1..depth; 0 = embedded input); None = all blocks.
            token_mode: ``cls`` | ``dist`` | ``mean_cls_dist`` | ``mean_patches`` -> (B, D);
                ``tokens`` -> (B, N, D).
            apply_norm: apply the final LayerNorm ``norm`` to each tapped output first.

        Returns:
            {tap: (B, D) or (B, N, D)}.
        """
        taps = check_taps(taps, self.depth)
        return run_blocks(self.tokens(x), self.blocks, self.norm, taps, token_mode, apply_norm,
                          self.num_prefix_tokens)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """(B, 1, F, T) -> {"logits": (B, C) pre-sigmoid, "embedding": (B, D) = (CLS+DIST)/2}."""
        emb = self.forward_features(x, [self.depth])[self.depth]
        return {"logits": self.head(emb), "embedding": emb}

    def embed_long(self, x: Tensor, segment_frames: int | None = None, hop: int | None = None,
                   lengths: Tensor | None = None, min_frames: int | None = None,
                   batch_size: int = 16) -> Tensor:
        """Embed audio longer than the positional encoding as the mean of segment embeddings.

        Segments ``[s, min(s + segment_frames, length))`` start at 0, hop, 2*hop ... below each
        item's valid length; trailing segments shorter than ``min_frames`` are dropped (the
        first segment is always kept). Segments of equal length are embedded in batches.
        Gradients flow (for training); wrap the call in ``torch.no_grad()`` for inference.

        Args:
            x: (B, 1, F, T) log-mel (items may be zero-padded; then give ``lengths``).
            segment_frames: frames per segment (default and maximum: ``input_tdim``).
            hop: frames between segment starts (default ``segment_frames``: no overlap).
            lengths: (B,) valid frames per item (default T for all).
            min_frames: shortest trailing segment kept (default and minimum: one patch, 16).
            batch_size: segments per forward pass.

        Returns:
            (B, D) mean embedding over each item's segments.
        """
        if x.dim() != 4:
            raise ValueError(f"{self.name}.embed_long: expected (B, 1, F, T), got {tuple(x.shape)}")
        b, _, _, total = x.shape
        seg = int(segment_frames or self.input_tdim)
        if not self.patch_size <= seg <= self.input_tdim:
            raise ValueError(f"segment_frames={seg} must lie in [{self.patch_size}, "
                             f"{self.input_tdim}] (the time positions cover {self.input_tdim})")
        hop = int(hop or seg)
        if hop < 1:
            raise ValueError(f"hop must be >= 1, got {hop}")
        min_frames = max(int(min_frames or self.patch_size), self.patch_size)
        if lengths is None:
            lens = [total] * b
        else:
            lens = [int(v) for v in torch.as_tensor(lengths).tolist()]
            if len(lens) != b or min(lens) < 1 or max(lens) > total:
                raise ValueError(f"lengths {lens} must hold {b} values in [1, {total}]")
        groups: dict[int, list[tuple[int, int]]] = defaultdict(list)  # seg length -> (item, start)
        for i, n in enumerate(lens):
            if n < self.patch_size:
                raise ValueError(f"item {i} has {n} frames, fewer than one patch ({self.patch_size})")
            for j, s in enumerate(range(0, n, hop)):
                e = min(s + seg, n)
                if j > 0 and e - s < min_frames:
                    break
                groups[e - s].append((i, s))
                if e == n:
                    break
        sums = x.new_zeros(b, self.embed_dim)
        counts = x.new_zeros(b)
        for length, items in groups.items():
            for k in range(0, len(items), batch_size):
                chunk = items[k:k + batch_size]
                batch = torch.stack([x[i, :, :, s:s + length] for i, s in chunk])
                emb = self.forward(batch)["embedding"]
                idx = torch.tensor([i for i, _ in chunk], device=x.device)
                sums.index_add_(0, idx, emb.to(sums.dtype))
                counts.index_add_(0, idx, torch.ones(len(chunk), device=x.device, dtype=counts.dtype))
        return sums / counts.unsqueeze(1)


def build_passt(name: str = "passt_s_swa_p16_s10_128_998_527", *,
                checkpoint: str | os.PathLike | None = None, scale: str | float | None = None,
                embed_dim: int | None = None, depth: int | None = None,
                num_heads: int | None = None, num_classes: int | None = None,
                device: str | torch.device | None = None, **kwargs) -> PaSST:
    """Build a PaSST by name (registry entry point).

    Args:
        name: ``passt_s_swa_p16_s10_128_998_527`` (PaSST-S, alias ``passt_s``),
            ``passt_s_p16_s16_128_1000_527`` (PaSST-N, ``passt_n``),
            ``passt_s_20sec_p16_s10_128_2000_527`` (PaSST-S20, ``passt_s20``),
            ``passt_l_kd_p16_s10_128_998_527`` (PaSST-L, depth 7, ``passt_l``).
        checkpoint: official weights (full size only).
        num_classes: classes of the head (default: the preset's, 527).
        scale: ``base`` | ``light`` | ``small`` | ``tiny`` | ``cpu`` (192 wide, 4 blocks, 3 heads)
            or a float width multiplier; ``embed_dim`` / ``depth`` / ``num_heads`` override.
        **kwargs: other :class:`PaSST` arguments (``s_patchout_t``, ``s_patchout_f``,
            ``u_patchout``, ``input_tdim`` ...).
    """
    if name not in PASST_PRESETS:
        raise KeyError(f"unknown PaSST model name {name!r}; known: {sorted(PASST_PRESETS)}")
    cfg = dict(PASST_PRESETS[name])
    return build_sized(PaSST, name, cfg, scale, PASST_SCALES, embed_dim, depth, num_heads,
                       checkpoint, num_classes, device, kwargs)
