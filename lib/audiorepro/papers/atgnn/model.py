"""ATGNN: Audio Tagging Graph Neural Network (Singh et al., IEEE Signal Processing Letters, 2024).

Modules, config, counting, loss and the ViG checkpoint filter only; data, training and records
live in :mod:`audiorepro.papers.atgnn.experiments`.

Architecture (Section II of the paper, details from Vision GNN (ViG, Han et al., "Vision GNN: An
Image is Worth Graph of Nodes", NeurIPS 2022; official code huawei-noah/Efficient-AI-Backbones,
``vig_pytorch/vig.py``, ``vig_pytorch/pyramid_vig.py``, ``vig_pytorch/gcn_lib/``) where the paper
defers to it):

* **PGN** (Patch GNN): a CNN stem turns the ``(B, 1, F, T)`` spectrogram into a grid of patch nodes
  plus a learnable positional encoding; each :class:`Grapher` block applies a linear layer, a
  dynamic dilated k-NN graph on the L2-normalised node features, max-relative graph convolution
  (Eq. 1-2: ``[x_i, max_j (x_j - x_i)]`` through a grouped 1x1 conv, BN, GELU), a linear layer and
  a residual (Eq. 3); an :class:`FFN` follows. **Isotropic**: 16x down-sampling stem
  (N = FT/256 nodes), k rising linearly from k to 2k. **Pyramid**: 4x stem, four stages with
  stride-2 conv down-sampling, graph keys average-pooled by ``reduce_ratios`` and a relative
  positional term ``-2 e_i.e_j / D`` (2-D sin-cos embeddings of the node positions) added to the
  k-NN distance.
* **MLG** = **PLG** + **LLG** (Eq. 4-6): learnable label embeddings ``L (B, C, S, 1)`` connect to
  their ``k_plg`` nearest patch nodes and are updated by max-relative graph convolution (+ FFN);
  then ``L <- A L + L`` with a learnable ``S x S`` adjacency ``A``.
* **Prediction** (Eq. 7-9): ``Y = sigmoid(Conv_p(AvgPool(X)) + [w_i . l_i]_i)``; the model returns
  the logits (before the sigmoid).

Module and parameter names follow the ViG / public ATGNN code so that ImageNet Pyramid-ViG weights
map onto the PGN by name (:func:`load_vig_weights`).

Departures from the reference code, on purpose:

* relative-position tables are **not** stored as frozen ``(N, N/r^2)`` parameters (4.3M elements
  per stage-1 block at 128 x 1056, O(N^2) for long inputs); they are computed per query chunk from
  the true non-square node grid (cacheable per input size with :meth:`ATGNN.cache_position_tables`);
* the k-NN search is chunked over query nodes (:func:`knn_graph`): peak memory O(chunk * M + N * k)
  instead of O(N * M);
* ``k`` and the dilation are capped at run time to the number of key nodes (small inputs).
* PLG direction: ``max_j (x_j - l_i)`` over the label's patch neighbours by default, the
  max-relative form of Eq. 1; ``plg_direction="l_minus_x"`` gives the public reimplementation's
  ``l_i - x_j`` (the paper's Eq. 4 is ambiguous).

Tensor layout inside blocks: ``(B, C, H, W)`` for patch grids, ``(B, C, S, 1)`` for label nodes,
held in **channels-last** memory format from the stem on, so that the graph code's node-major
``(B, N, C)`` tokens are free views (no permute copies between conv and graph layouts).

Speed (``benchmarks/bench_atgnn.py``; every item is exact, tests compare against a plain reference):

* k-NN distances: one ``baddbmm`` per query chunk (``|x|^2 - 2 x.y``) plus in-place ``|y|^2`` and
  relative term; relative-position rows from cached key embeddings (:func:`relative_pos_rows`);
  the k smallest by :func:`topk_smallest` (two-stage top-k over key groups, same indices);
* neighbour max: ``index_select`` on the contiguous ``(B*M, C)`` pool in cache-sized blocks, a
  (1, k) max-pool with indices, and a ``scatter_add_`` backward (the ViG ``torch.max`` tie rule)
  instead of advanced indexing + ``amax`` (whose backward materialises (B, N, k, C) masks);
  ``max_j (x_j - x_i)`` is computed as ``max_j x_j - x_i`` (exact) and written straight into the
  interleaved ``[x, m]`` layout (:class:`_MaxRelative`);
* 1 x 1 conv + BN (+ GELU) blocks run on the ``(B*N, C)`` token view: the conv as one GEMM
  (grouped: one batched GEMM), BN as a 2-D batch norm (:func:`_pointwise`; same modules, keys and
  running statistics) instead of Conv2d (PyTorch's ``_slow_conv2d`` path for 1 x 1 kernels here);
* 3 x 3 conv weights are stored channels-last (same keys and shapes); LLG runs as one
  ``baddbmm``: ``L^T + A L^T``.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from audiorepro.backbones.counting import count_flops, count_parameters

__all__ = [
    "ATGNNConfig", "PRESETS", "ATGNN", "build_atgnn", "Grapher", "FFN", "MLGBlock", "DropPath",
    "knn_graph", "topk_smallest", "gather_max", "sincos_pos_2d", "relative_pos_term", "relative_pos_rows",
    "count_atgnn", "position_table_elements", "graph_schedule", "schedule_summary",
    "load_vig_weights", "map_vig_state_dict", "VigLoadReport", "knn_peak_memory",
    "atgnn_loss", "LabelNoiseRobustBCE", "PLG_DIRECTIONS", "plg_features", "PSLA", "PSLA_SCALES",
]


# ================================================================================== config
@dataclass
class ATGNNConfig:
    """Hyper-parameters of one ATGNN variant.

    Attributes:
        variant: ``pyramid`` or ``isotropic``.
        channels: node width per stage (isotropic: the same width repeated).
        blocks: PGN blocks per stage (``M`` of the paper).
        mlg_blocks: MLG blocks after each stage (``P``); ignored when ``use_mlg`` is False.
        use_mlg: False gives the "(-MLG)" rows: PGN + patch head only.
        num_classes: S. input_size: (F, T) the position tables are sized for (mel bins, frames).
        in_chans: spectrogram channels (1). k: k-NN neighbours (pyramid: every block; isotropic:
            rises linearly to ``k_max``, default 2k). k_plg: patch neighbours of a label node.
        dilation: use dilated k-NN (dilation ``min(i // 4 + 1, max_dilation)`` for block i).
        max_dilation: ``None``: ViG's rule (pyramid 49 // k_max, isotropic 196 // k_max).
        reduce_ratios: pyramid key pooling per stage (ViG: 4, 2, 1, 1).
        relative_pos: add the relative positional term to the k-NN distance (pyramid default).
        head_dim: width of the 1x1-conv patch head (1024 in ViG / ATGNN).
        drop_path: stochastic depth, rising linearly to this value. dropout: head dropout.
        mlg_ffn: FFN after each PLG update (as in the public reimplementation).
        plg_direction: ``"x_minus_l"`` aggregates ``max_j (x_j - l_i)`` (the max-relative form of
            Eq. 1; default), ``"l_minus_x"`` ``max_j (l_i - x_j)`` as the public reimplementation
            (the paper's Eq. 4 does not fix the order).
        knn_chunk: max elements of one (B, chunk, M) distance block in the k-NN search.
        iso_stem_down: down-sampling of the isotropic stem, 16 (ViG: four stride-2 convs) or 8
            (three; the CPU-sized ``iso-tiny-dilated``, whose small input would otherwise leave a
            nearly complete graph). Ignored by the pyramid (its stem is always 4x).
    """

    variant: str = "pyramid"
    channels: Sequence[int] = (80, 160, 400, 640)
    blocks: Sequence[int] = (2, 2, 6, 2)
    mlg_blocks: Sequence[int] = (1, 1, 3, 1)
    use_mlg: bool = True
    num_classes: int = 527
    input_size: tuple[int, int] = (128, 1056)
    in_chans: int = 1
    k: int = 9
    k_max: int | None = None
    k_plg: int = 9
    dilation: bool = True
    max_dilation: int | None = None
    reduce_ratios: Sequence[int] = (4, 2, 1, 1)
    relative_pos: bool | None = None
    head_dim: int = 1024
    drop_path: float = 0.0
    dropout: float = 0.0
    mlg_ffn: bool = True
    plg_direction: str = "x_minus_l"
    knn_chunk: int = 1 << 22
    iso_stem_down: int = 16

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        self.blocks = tuple(int(b) for b in self.blocks)
        self.mlg_blocks = tuple(int(p) for p in self.mlg_blocks)
        self.reduce_ratios = tuple(int(r) for r in self.reduce_ratios)
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        if self.relative_pos is None:
            self.relative_pos = self.variant == "pyramid"
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        def bad(name: str, why: str) -> None:
            raise ValueError(f"ATGNNConfig.{name} = {getattr(self, name)!r}: {why}")

        if self.variant not in ("pyramid", "isotropic"):
            bad("variant", "must be 'pyramid' or 'isotropic'")
        if len(self.channels) != len(self.blocks) or not self.blocks:
            bad("channels", f"needs one width per stage ({len(self.blocks)} stages in blocks)")
        if any(c < 4 or c % 4 for c in self.channels):
            bad("channels", "widths must be positive multiples of 4 (grouped convs, groups=4)")
        if any(b < 1 for b in self.blocks):
            bad("blocks", "every stage needs >= 1 PGN block")
        if self.use_mlg and len(self.mlg_blocks) != len(self.blocks):
            bad("mlg_blocks", f"needs one count per stage ({len(self.blocks)} stages)")
        if any(p < 0 for p in self.mlg_blocks):
            bad("mlg_blocks", "counts must be >= 0")
        if self.variant == "isotropic" and len(set(self.channels)) != 1:
            bad("channels", "an isotropic model keeps one width in every stage")
        if self.variant == "pyramid" and len(self.reduce_ratios) < len(self.blocks):
            bad("reduce_ratios", "needs one ratio per stage")
        if self.k < 1 or self.k_plg < 1:
            bad("k", "k and k_plg must be >= 1")
        if self.plg_direction not in PLG_DIRECTIONS:
            bad("plg_direction", f"must be one of {PLG_DIRECTIONS}")
        if self.num_classes < 1:
            bad("num_classes", "must be >= 1")
        down = self.down_factor
        if self.input_size[0] < down or self.input_size[1] < down:
            bad("input_size", f"must be at least {down} x {down} for this variant")
        if self.in_chans < 1:
            bad("in_chans", "must be >= 1")
        if self.iso_stem_down not in (8, 16):
            bad("iso_stem_down", "must be 8 or 16")

    @property
    def stem_factor(self) -> int:
        """Down-sampling of the stem: 4 (pyramid) or ``iso_stem_down`` (isotropic; ViG: 16)."""
        return 4 if self.variant == "pyramid" else self.iso_stem_down

    @property
    def down_factor(self) -> int:
        """Total down-sampling from the input to the last stage."""
        if self.variant == "isotropic":
            return self.iso_stem_down
        return 4 * 2 ** (len(self.blocks) - 1)

    @property
    def n_blocks(self) -> int:
        return sum(self.blocks)

    def knn_schedule(self) -> list[int]:
        """k per PGN block (pyramid: constant k; isotropic: linear k -> k_max = 2k)."""
        if self.variant == "pyramid":
            kmax = self.k if self.k_max is None else self.k_max
        else:
            kmax = 2 * self.k if self.k_max is None else self.k_max
        return [int(x.item()) for x in torch.linspace(self.k, kmax, self.n_blocks)]

    def dilation_schedule(self) -> list[int]:
        """Dilation per PGN block: ``min(i // 4 + 1, max_dilation)`` (1 if dilation is off)."""
        if not self.dilation:
            return [1] * self.n_blocks
        kmax = max(self.knn_schedule())
        md = self.max_dilation
        if md is None:
            md = (49 if self.variant == "pyramid" else 196) // kmax
        md = max(1, int(md))
        return [min(i // 4 + 1, md) for i in range(self.n_blocks)]

    def with_(self, **changes: Any) -> "ATGNNConfig":
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


#: Named variants. ``pyr-s`` / ``pyr-med``: Section III-B (M, P) with Pyramid ViG-S / -M widths;
#: ``iso``: isotropic ViG-S widths (320 x 16) with one MLG block after every 4 PGN blocks (the paper
#: gives no iso MLG layout - our assumption). ``*-tiny``: CPU-sized variants (64 x 64 inputs: nearly
#: complete, undilated graphs); ``*-tiny-dilated``: the book profile's CPU-sized variants in the
#: paper's graph regime at 64 x 128 (:func:`graph_schedule`): ``pyr-tiny-dilated`` stands for pyr-s,
#: ``pyr-med-tiny-dilated`` for pyr-med (1.2x wider, 2.5x the stage-3 blocks and twice their MLG
#: blocks, as pyr-med against pyr-s), ``iso-tiny-dilated`` for iso (an 8x stem instead of 16x).
PRESETS: dict[str, dict[str, Any]] = {
    "pyr-s": dict(variant="pyramid", channels=(80, 160, 400, 640), blocks=(2, 2, 6, 2),
                  mlg_blocks=(1, 1, 3, 1)),
    "pyr-med": dict(variant="pyramid", channels=(96, 192, 384, 768), blocks=(2, 2, 16, 2),
                    mlg_blocks=(1, 1, 6, 1)),
    "iso": dict(variant="isotropic", channels=(320,) * 4, blocks=(4, 4, 4, 4),
                mlg_blocks=(1, 1, 1, 1)),
    "pyr-tiny": dict(variant="pyramid", channels=(24, 48, 96, 128), blocks=(1, 1, 2, 1),
                     mlg_blocks=(1, 1, 1, 1), head_dim=128),
    "iso-tiny": dict(variant="isotropic", channels=(64,) * 2, blocks=(3, 3), mlg_blocks=(1, 1),
                     head_dim=128),
    # the paper's graph regime at CPU size (the book's 64 x 128 input): k = 9 of 128 keys in the
    # first two stages (key pooling 2, 1 instead of ViG's 4, 2) and four stage-3 blocks, so that
    # blocks 5-6 are dilated (d = 2), as the paper's dilation grows with depth
    "pyr-tiny-dilated": dict(variant="pyramid", channels=(24, 48, 96, 128), blocks=(1, 1, 4, 1),
                             mlg_blocks=(1, 1, 1, 1), head_dim=128, reduce_ratios=(2, 1, 1, 1)),
    "pyr-med-tiny-dilated": dict(variant="pyramid", channels=(28, 56, 116, 152), blocks=(1, 1, 10, 1),
                                 mlg_blocks=(1, 1, 2, 1), head_dim=128, reduce_ratios=(2, 1, 1, 1)),
    "iso-tiny-dilated": dict(variant="isotropic", channels=(64,) * 2, blocks=(3, 3), mlg_blocks=(1, 1),
                             head_dim=128, iso_stem_down=8),
}


def graph_schedule(config: ATGNNConfig, input_size: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """What every PGN block's k-NN graph really is at ``input_size`` (default
    ``config.input_size``; (mel bins, frames)): per block its stage, query grid and nodes N, key
    nodes M (keys average-pooled by the stage's reduce ratio, capped to the grid), the configured
    k and dilation d and the effective ones of :func:`knn_graph` (``k' = min(k, M)``,
    ``d' = min(d, M // k')``), the share of keys each node connects to (k' / M) and whether the
    dilation is active (d' > 1). At small inputs d' = 1 and k' / M is large: the mechanism
    under study is switched off."""
    f, t = input_size or config.input_size
    up = lambda n, times: n if times == 0 else up(-(-n // 2), times - 1)  # noqa: E731 - stride-2 convs (pad 1)
    convs = 2 if config.variant == "pyramid" else config.stem_factor.bit_length() - 1
    h, w = up(f, convs), up(t, convs)
    ks, ds = config.knn_schedule(), config.dilation_schedule()
    rows, i = [], 0
    for s, nb in enumerate(config.blocks):
        if s > 0 and config.variant == "pyramid":
            h, w = up(h, 1), up(w, 1)
        r = config.reduce_ratios[s] if config.variant == "pyramid" else 1
        r = max(1, min(r, h, w))
        m = (h // r) * (w // r)
        for _ in range(nb):
            k_eff = max(1, min(ks[i], m))
            d_eff = max(1, min(ds[i], m // k_eff))
            rows.append({"block": i + 1, "stage": s + 1, "grid": f"{h} x {w}", "nodes": h * w,
                         "keys": m, "k": ks[i], "d": ds[i], "k'": k_eff, "d'": d_eff,
                         "k' / keys": round(k_eff / m, 3), "dilated": d_eff > 1})
            i += 1
    return rows


def schedule_summary(config: ATGNNConfig, input_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """One line of :func:`graph_schedule`: blocks, keys of the first block, its share k' / keys,
    the largest share of any block, and how many blocks are dilated (d' > 1)."""
    rows = graph_schedule(config, input_size)
    return {"blocks": len(rows), "keys (first block)": rows[0]["keys"],
            "k' / keys (first block)": rows[0]["k' / keys"],
            "largest k' / keys": max(r["k' / keys"] for r in rows),
            "dilated blocks": sum(bool(r["dilated"]) for r in rows)}


def build_atgnn(preset: str = "pyr-s", **overrides: Any) -> "ATGNN":
    """An :class:`ATGNN` from a :data:`PRESETS` name plus config overrides.

    Example: ``build_atgnn("pyr-s", num_classes=200, input_size=(128, 1024), use_mlg=False)``.
    """
    if preset not in PRESETS:
        raise KeyError(f"unknown ATGNN preset {preset!r}; known: {sorted(PRESETS)}")
    unknown = sorted(set(overrides) - {f.name for f in fields(ATGNNConfig)})
    if unknown:
        raise KeyError(f"ATGNN config: unknown key(s) {unknown}; known: "
                       f"{sorted(f.name for f in fields(ATGNNConfig))}")
    return ATGNN(ATGNNConfig(**{**PRESETS[preset], **overrides}))


# ================================================================================== helpers
class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``p`` (training only)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def _conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups),
                         nn.BatchNorm2d(cout))


def sincos_pos_2d(dim: int, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """2-D sin-cos position embeddings (MAE / ViG ``get_2d_sincos_pos_embed`` formula).

    Args:
        dim: embedding size (multiple of 4). rows, cols: (P,) float positions of P nodes.
    Returns:
        (P, dim): ``[sin(r w), cos(r w), sin(c w), cos(c w)]`` with ``w_i = 10000^(-i / (dim/4))``.
        Each row has squared norm dim / 2.
    """
    if dim % 4:
        raise ValueError(f"sincos_pos_2d: dim={dim} must be a multiple of 4")
    q = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(q, dtype=torch.float64, device=rows.device) / q)
    r = rows.to(torch.float64)[:, None] * omega
    c = cols.to(torch.float64)[:, None] * omega
    return torch.cat([r.sin(), r.cos(), c.sin(), c.cos()], dim=1).float()


def _grid_positions(h: int, w: int, stride: float = 1.0, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Row/col coordinates (in units of the full grid) of an ``h x w`` grid whose cells cover
    ``stride x stride`` cells of the full grid (cell centres)."""
    off = (stride - 1.0) / 2.0
    rows = torch.arange(h, device=device, dtype=torch.float64) * stride + off
    cols = torch.arange(w, device=device, dtype=torch.float64) * stride + off
    rr, cc = torch.meshgrid(rows, cols, indexing="ij")
    return rr.reshape(-1), cc.reshape(-1)


def relative_pos_term(dim: int, hw: tuple[int, int], r: int, device: Any = None,
                      rows: slice | None = None) -> torch.Tensor:
    """Relative positional term added to the k-NN distance: ``-2 e_i . e_j / dim``.

    ``e_i`` embeds query node i of the ``H x W`` grid, ``e_j`` key node j of the grid pooled by
    ``r`` (cell centres). Identical positions give -1 (nearest), far ones about 0.
    Returns (N or len(rows), M) with N = H W, M = (H // r) (W // r).
    """
    h, w = hw
    qr, qc = _grid_positions(h, w, 1.0, device)
    if rows is not None:
        qr, qc = qr[rows], qc[rows]
    kr, kc = _grid_positions(h // r, w // r, float(r), device)
    eq = sincos_pos_2d(dim, qr, qc)
    ek = sincos_pos_2d(dim, kr, kc)
    return -2.0 * (eq @ ek.T) / dim


def relative_pos_rows(dim: int, hw: tuple[int, int], r: int, device: Any = None):
    """``rel_fn`` for :func:`knn_graph`: a callable ``slice -> (rows, M)`` giving rows of
    :func:`relative_pos_term` without ever building the (N, M) table.

    The key embeddings (M, dim) are computed once; each call embeds only the requested query rows
    (O((rows + M) * dim) work and memory per call). Values equal ``relative_pos_term(..., rows=sl)`` up to float rounding.
    """
    h, w = hw
    qr, qc = _grid_positions(h, w, 1.0, device)
    kr, kc = _grid_positions(h // r, w // r, float(r), device)
    ek_t = sincos_pos_2d(dim, kr, kc).T.contiguous()         # (dim, M)

    def rows_fn(sl: slice) -> torch.Tensor:
        return (sincos_pos_2d(dim, qr[sl], qc[sl]) @ ek_t).mul_(-2.0).div_(dim)   # one block

    return rows_fn


@lru_cache(maxsize=256)
def _group_count(m: int, kk: int) -> int:
    """Key groups G for :func:`topk_smallest` (a divisor of ``m`` minimising the candidate work
    ``G + (kk + 1) m / G``), or 0 when plain ``torch.topk`` is as cheap (``m >= 64 kk``: its
    partial-sort path; or no divisor with under ``m / 2`` work)."""
    if m >= 64 * kk:
        return 0
    best, cost = 0, m / 2
    for g in range(kk + 1, m // 2 + 1):
        if m % g == 0 and g + (kk + 1) * (m // g) < cost:
            best, cost = g, g + (kk + 1) * (m // g)
    return best


def topk_smallest(dist: torch.Tensor, kk: int) -> torch.Tensor:
    """``torch.topk(dist, kk, -1, largest=False, sorted=True).indices`` in two cheaper stages.

    dist (..., M) contiguous -> (..., kk) int64. Keys are split into G strided groups
    (key j in group j % G); the kk + 1 groups with the smallest minima hold the kk + 1 smallest
    keys, so one top-k over those groups' (kk + 1) * M / G keys replaces the top-k over M.
    Rows whose kk + 1 smallest values contain a tie (or a NaN) are redone with ``torch.topk`` on
    the full row, so the result is identical to it, tie order included. Meta tensors (FLOP
    counting) take plain ``torch.topk``.
    """
    m = dist.shape[-1]
    groups = _group_count(m, kk)
    if groups == 0 or dist.is_meta:
        return torch.topk(dist, kk, dim=-1, largest=False, sorted=True).indices
    lead = dist.shape[:-1]
    gmin = dist.view(*lead, m // groups, groups).amin(dim=-2)              # (..., G)
    top = torch.topk(gmin, kk + 1, dim=-1, largest=False, sorted=False).indices
    cand = (top.unsqueeze(-1) + torch.arange(0, m, groups, device=dist.device)).flatten(-2)
    val, pos = torch.topk(dist.gather(-1, cand), kk + 1, dim=-1, largest=False, sorted=True)
    idx = cand.gather(-1, pos[..., :kk])
    redo = (val[..., 1:] == val[..., :-1]).any(-1) | val[..., -1].isnan()
    if redo.any():
        idx[redo] = torch.topk(dist[redo], kk, dim=-1, largest=False, sorted=True).indices
    return idx


def knn_graph(x: torch.Tensor, y: torch.Tensor | None, k: int, dilation: int = 1,
              rel: torch.Tensor | None = None, rel_fn: Any = None,
              chunk_elements: int = 1 << 22) -> torch.Tensor:
    """Dilated k-NN of every query node among the key nodes, chunked over queries.

    Distances are squared Euclidean between L2-normalised features (plus ``rel`` if given):
    ``|x_i|^2 - 2 x_i.y_j + |y_j|^2 + rel_ij``. The ``k * dilation`` nearest are taken and every
    ``dilation``-th kept (ViG / DeepGCN dilated k-NN). ``k`` and ``dilation`` are capped so that
    ``k * dilation <= M``.

    Args:
        x: (B, N, C) query features. y: (B, M, C) key features (``None``: y = x).
        k: neighbours per query. dilation: d.
        rel: optional (N, M) additive term; rel_fn: or a callable ``slice -> (n, M)`` giving rows
            of it on demand (so the full N x M table never exists).
        chunk_elements: max B * rows * M elements of one distance block.
    Returns:
        (B, N, k') int64 key indices, nearest first, k' = min(k, M).
    Memory: O(B * chunk * M + B * N * k) - not O(N * M).
    """
    if y is None:
        y = x
    B, N, _ = x.shape
    M = y.shape[1]
    k_eff = max(1, min(int(k), M))
    d_eff = max(1, min(int(dilation), M // k_eff))
    kk = k_eff * d_eff
    x = F.normalize(x, p=2.0, dim=-1)
    y = F.normalize(y, p=2.0, dim=-1)
    x_sq = (x * x).sum(-1, keepdim=True)                    # (B, N, 1)
    y_sq = (y * y).sum(-1).unsqueeze(1)                     # (B, 1, M)
    yt = y.transpose(1, 2)                                  # (B, C, M) view, no copy
    rows = max(1, int(chunk_elements) // max(1, B * M))
    out = torch.empty(B, N, k_eff, dtype=torch.long, device=x.device)
    for start in range(0, N, rows):
        sl = slice(start, min(N, start + rows))
        # |x|^2 - 2 x.y in one GEMM (beta * x_sq + alpha * x y^T), then + |y|^2 (+ rel) in place
        dist = torch.baddbmm(x_sq[:, sl], x[:, sl], yt, alpha=-2.0)      # (B, rows, M)
        dist.add_(y_sq)
        if rel is not None:
            dist.add_(rel[sl].to(dist.dtype))
        elif rel_fn is not None:
            dist.add_(rel_fn(sl).to(dist.dtype))
        idx = topk_smallest(dist, kk)
        out[:, sl] = idx[..., ::d_eff] if d_eff > 1 else idx
        del dist
    return out


def _block_max(pool: torch.Tensor, rows: torch.Tensor, out: torch.Tensor,
               centre: torch.Tensor | None = None) -> torch.Tensor:
    """Write ``max_j pool[rows[q, j]]`` (minus ``centre[q]`` if given) into ``out`` (Q, C), any
    strides; return the arg-max pool rows (Q, C) int64.

    Per block of queries (about ``_GATHER_BLOCK`` gathered elements, so the block stays in
    cache): one ``index_select`` of the block's neighbour rows -> (q, k, C), read as a
    channels-last (1, C, q, k) image, and a (1, k) ``max_pool2d`` with indices (vectorised over C).
    Ties pick the first tied neighbour (like ``torch.max(dim)`` in the ViG code).
    """
    q_all, k = rows.shape
    C = pool.shape[1]
    src = torch.empty(q_all, C, dtype=torch.long, device=pool.device)
    step = max(1, _GATHER_BLOCK // (k * C))
    for s in range(0, q_all, step):
        r = rows[s:s + step]
        q = r.shape[0]
        nb = pool.index_select(0, r.reshape(-1)).view(1, q, k, C).permute(0, 3, 1, 2)
        v, i = F.max_pool2d(nb, (1, k), return_indices=True)           # (1, C, q, 1), i = q*k + j
        v = v.permute(0, 2, 3, 1).reshape(q, C)
        if centre is None:
            out[s:s + q] = v
        else:
            torch.sub(v, centre[s:s + q], out=out[s:s + q])
        src[s:s + q] = r.reshape(-1)[i.permute(0, 2, 3, 1).reshape(q, C)]
    return src


class _GatherMax(torch.autograd.Function):
    """``m[q, c] = max_j pool[rows[q, j], c]`` (:func:`_block_max`) with the gradient routed to
    the arg-max row by one ``scatter_add_`` (ties: the whole gradient to the first tied
    neighbour, not split as by ``amax``; the forward value is identical)."""

    @staticmethod
    def forward(ctx: Any, pool: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        val = pool.new_empty(rows.shape[0], pool.shape[1])
        ctx.save_for_backward(_block_max(pool, rows, val))
        ctx.n_rows = pool.shape[0]
        return val

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (src,) = ctx.saved_tensors
        g = grad.new_zeros(ctx.n_rows, grad.shape[1]).scatter_add_(0, src, grad.contiguous())
        return g, None


class _MaxRelative(torch.autograd.Function):
    """``z[q] = [x_0, m_0, x_1, m_1, ...]`` with ``m = max_j pool[rows[q, j]] - x[q]``: the
    max-relative features written straight into the interleaved (Q, 2C) layout (no separate
    subtract / stack passes). x (Q, C), pool (P, C), rows (Q, k) -> (Q, 2C)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, pool: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        Q, C = x.shape
        z = x.new_empty(Q, C, 2)
        z[..., 0] = x
        ctx.save_for_backward(_block_max(pool, rows, z[..., 1], centre=x))
        ctx.n_rows = pool.shape[0]
        return z.view(Q, 2 * C)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:  # type: ignore[override]
        (src,) = ctx.saved_tensors
        g = grad.reshape(src.shape[0], -1, 2)
        gm = g[..., 1]
        gpool = gm.new_zeros(ctx.n_rows, gm.shape[1]).scatter_add_(0, src, gm.contiguous())
        return g[..., 0] - gm, gpool, None


#: elements gathered per block in :func:`_block_max` (1 MB of float32: fits in L2)
_GATHER_BLOCK = 1 << 18


def gather_max(y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``max_j y[b, idx[b, n, j]]``: y (B, M, C), idx (B, N, k) -> (B, N, C).

    Works on the contiguous (B*M, C) view with batch offsets added to ``idx`` (no (B, N, k, C)
    advanced-indexing intermediate is kept for the backward pass).
    """
    B, M, C = y.shape
    return _GatherMax.apply(y.reshape(B * M, C), _flat_rows(idx, M)).view(B, idx.shape[1], C)


def _flat_rows(idx: torch.Tensor, m: int) -> torch.Tensor:
    """(B, N, k) per-batch key indices -> (B*N, k) rows of the flattened (B*M, C) key pool."""
    B, N, k = idx.shape
    return (idx + (torch.arange(B, device=idx.device) * m).view(B, 1, 1)).reshape(B * N, k)


def _max_relative(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Max-relative aggregation ``max_j (y_j - x_i)`` interleaved with ``x_i`` (ViG layout).

    x: (B, N, C) centres, y: (B, M, C) neighbours pool, idx: (B, N, k) -> (B, N, 2C) node-major
    tokens with channels ``[x_0, m_0, x_1, m_1, ...]`` (ViG's ``cat`` on dim 2 then reshape).
    ``max_j (y_j - x_i) = max_j y_j - x_i`` exactly (rounding of ``y_j - x_i`` is monotone in y_j).
    """
    B, N, C = x.shape
    M = y.shape[1]
    z = _MaxRelative.apply(x.reshape(B * N, C), y.reshape(B * M, C), _flat_rows(idx, M))
    return z.view(B, N, 2 * C)


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C) node-major tokens; a free view for channels-last input."""
    B, C = x.shape[:2]
    return x.permute(0, 2, 3, 1).reshape(B, -1, C)


def _image(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H*W, C) contiguous tokens -> (B, C, H, W) channels-last view (no copy)."""
    B, _, C = t.shape
    return t.view(B, h, w, C).permute(0, 3, 1, 2)


def _conv1x1_tokens(t: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 ``conv`` on node-major tokens: (B, N, Cin) -> (B, N, Cout) contiguous.

    One GEMM on the (B*N, Cin) view (``groups`` > 1: one batched GEMM over the groups); same
    weights, MACs and values as the conv, without its im2col / layout copies.
    """
    B, N, cin = t.shape
    w, g = conv.weight, conv.groups
    cout = w.shape[0]
    t2 = t.reshape(B * N, cin)
    if g == 1:
        out = F.linear(t2, w.view(cout, cin), conv.bias)
    else:
        ci, co = cin // g, cout // g
        bias = conv.bias.view(g, 1, co) if conv.bias is not None else t2.new_zeros(g, 1, co)
        out = torch.baddbmm(bias, t2.view(B * N, g, ci).transpose(0, 1),
                            w.view(g, co, ci).transpose(1, 2))           # (g, B*N, co)
        out = out.transpose(0, 1).reshape(B * N, cout)
    return out.view(B, N, cout)


def _bn_tokens(t: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``bn`` (same statistics and running-stat update as ``bn(image)``) on tokens (B, N, C)."""
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            momentum = 1.0 / float(bn.num_batches_tracked)
    use_batch = bn.training or (bn.running_mean is None and bn.running_var is None)
    track = not bn.training or bn.track_running_stats
    out = F.batch_norm(t.reshape(-1, t.shape[-1]), bn.running_mean if track else None,
                       bn.running_var if track else None, bn.weight, bn.bias, use_batch,
                       momentum, bn.eps)
    return out.view(t.shape)


def _pointwise(seq: nn.Sequential, t: torch.Tensor) -> torch.Tensor:
    """A ``(1x1 Conv2d, BatchNorm2d[, act])`` sequence on tokens: (B, N, Cin) -> (B, N, Cout)."""
    for layer in seq:
        if isinstance(layer, nn.Conv2d):
            t = _conv1x1_tokens(t, layer)
        elif isinstance(layer, nn.BatchNorm2d):
            t = _bn_tokens(t, layer)
        else:
            t = layer(t)
    return t


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


# ================================================================================== blocks
class GraphConv(nn.Module):
    """Max-relative graph convolution (Eq. 1-2) over a dynamic dilated k-NN graph.

    Holds ``gconv.nn`` = grouped 1x1 conv (2C -> 2C, groups 4) + BN + GELU (ViG ``MRConv2d``).
    Input (B, C, H, W) -> output (B, 2C, H, W), channels-last (any input layout works; a
    channels-last input avoids one copy).
    """

    def __init__(self, channels: int, k: int, dilation: int, r: int = 1,
                 relative_pos: bool = False, chunk: int = 1 << 22) -> None:
        super().__init__()
        self.k, self.dilation, self.r, self.relative_pos, self.chunk = k, dilation, r, relative_pos, chunk
        self.gconv = nn.Module()
        self.gconv.nn = nn.Sequential(nn.Conv2d(2 * channels, 2 * channels, 1, groups=4),
                                      nn.BatchNorm2d(2 * channels), nn.GELU())
        self._rel_cache: dict[tuple, torch.Tensor] = {}
        self.last_edges: torch.Tensor | None = None
        self.keep_edges = False

    def cache_relative_pos(self, hw: tuple[int, int], device: Any = None) -> None:
        """Precompute the (N, M) relative-position table for grid ``hw`` (like ViG's frozen table)."""
        r = self._r_eff(hw)
        self._rel_cache[(hw, r)] = relative_pos_term(self.gconv.nn[0].in_channels // 2, hw, r, device)

    def _r_eff(self, hw: tuple[int, int]) -> int:
        return max(1, min(self.r, hw[0], hw[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _channels_last(x)
        B, C, H, W = x.shape
        r = self._r_eff((H, W))
        keys = F.avg_pool2d(x, r, r) if r > 1 else x
        xq = _tokens(x)                                       # (B, N, C), view if channels-last
        yk = _tokens(keys)                                    # (B, M, C)
        rel = rel_fn = None
        if self.relative_pos:
            rel = self._rel_cache.get(((H, W), r))
            if rel is None:
                rel_fn = relative_pos_rows(C, (H, W), r, x.device)
        with torch.no_grad():
            idx = knn_graph(xq.detach(), yk.detach(), self.k, self.dilation, rel, rel_fn, self.chunk)
        if self.keep_edges:
            self.last_edges = idx
        return _image(_pointwise(self.gconv.nn, _max_relative(xq, yk, idx)), H, W)  # (B, 2C, H, W)


class Grapher(nn.Module):
    """PGN graph block (Eq. 3): ``y = x + DropPath(fc2(GraphConv(fc1(x))))`` on (B, C, H, W)."""

    def __init__(self, channels: int, k: int = 9, dilation: int = 1, r: int = 1,
                 relative_pos: bool = False, drop_path: float = 0.0, chunk: int = 1 << 22) -> None:
        super().__init__()
        self.fc1 = _conv_bn(channels, channels)
        self.graph_conv = GraphConv(channels, k, dilation, r, relative_pos, chunk)
        self.fc2 = _conv_bn(2 * channels, channels)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _channels_last(x)
        H, W = x.shape[-2:]
        t = _tokens(x)                                        # (B, N, C) view
        g = self.graph_conv(_image(_pointwise(self.fc1, t), H, W))
        return _image(t + self.drop_path(_pointwise(self.fc2, _tokens(g))), H, W)


class FFN(nn.Module):
    """Node-wise feed-forward network: ``x + DropPath(fc2(GELU(fc1(x))))``, hidden 4C; (B, C, H, W)."""

    def __init__(self, channels: int, hidden: int | None = None, drop_path: float = 0.0) -> None:
        super().__init__()
        hidden = hidden or 4 * channels
        self.fc1 = _conv_bn(channels, hidden)
        self.act = nn.GELU()
        self.fc2 = _conv_bn(hidden, channels)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _channels_last(x)
        H, W = x.shape[-2:]
        t = _tokens(x)                                        # (B, N, C) view
        h = _pointwise(self.fc2, self.act(_pointwise(self.fc1, t)))
        return _image(t + self.drop_path(h), H, W)


class Downsample(nn.Module):
    """Stride-2 3x3 conv + BN between pyramid stages (key names ``conv.0`` / ``conv.1``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _conv_bn(cin, cout, 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


PLG_DIRECTIONS = ("x_minus_l", "l_minus_x")


def plg_features(lq: torch.Tensor, pk: torch.Tensor, idx: torch.Tensor,
                 direction: str = "x_minus_l") -> torch.Tensor:
    """PLG input ``[l_i, max_j (x_j - l_i)]`` (``x_minus_l``) or ``[l_i, max_j (l_i - x_j)]``
    (``l_minus_x``, the public reimplementation), interleaved as in ViG.

    lq: (B, S, C) label nodes, pk: (B, N, C) patch nodes, idx: (B, S, k) -> (B, S, 2C).
    ``max_j (l_i - x_j)`` is computed exactly as the max-relative of the negated nodes,
    ``max_j ((-x_j) - (-l_i))``, with the centre channels negated back.
    """
    if direction == "x_minus_l":
        return _max_relative(lq, pk, idx)
    if direction != "l_minus_x":
        raise ValueError(f"plg_direction {direction!r} must be one of {PLG_DIRECTIONS}")
    z = _max_relative(-lq, -pk, idx)
    B, S, C2 = z.shape
    sign = torch.tensor([-1.0, 1.0], dtype=z.dtype, device=z.device)
    return (z.view(B, S, C2 // 2, 2) * sign).view(B, S, C2)


class PLGConv(nn.Module):
    """Patch-Label graph conv (Eq. 4): each label node takes its ``k`` nearest patch nodes
    (L2-normalised Euclidean), ``[l_i, max_j (x_j - l_i)]`` (or ``max_j (l_i - x_j)``:
    :func:`plg_features`) -> grouped 1x1 conv 2C -> C + BN + GELU.

    lab (B, C, S, 1), patches (B, C, N, 1) -> (B, C, S, 1).
    """

    def __init__(self, channels: int, k: int = 9, chunk: int = 1 << 22,
                 direction: str = "x_minus_l") -> None:
        super().__init__()
        if direction not in PLG_DIRECTIONS:
            raise ValueError(f"plg_direction {direction!r} must be one of {PLG_DIRECTIONS}")
        self.k, self.chunk, self.direction = k, chunk, direction
        self.nn = nn.Sequential(nn.Conv2d(2 * channels, channels, 1, groups=4),
                                nn.BatchNorm2d(channels), nn.GELU())
        self.keep_edges = False
        self.last_edges: torch.Tensor | None = None

    def forward(self, lab: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        lq = _tokens(lab)                                     # (B, S, C)
        pk = _tokens(patches)                                 # (B, N, C)
        with torch.no_grad():
            idx = knn_graph(lq.detach(), pk.detach(), self.k, 1, chunk_elements=self.chunk)
        if self.keep_edges:
            self.last_edges = idx
        return _image(_pointwise(self.nn, plg_features(lq, pk, idx, self.direction)),
                      lq.shape[1], 1)


class MLGBlock(nn.Module):
    """One MLG block: PLG (Eq. 4-5, residual, optional FFN) then LLG (Eq. 6: ``L <- A L + L``).

    ``adj`` is the learnable S x S adjacency A (uniform init in +-1/sqrt(S)).
    lab (B, C, S, 1), patches (B, C, N, 1) -> (B, C, S, 1).
    """

    def __init__(self, channels: int, num_classes: int, k: int = 9, drop_path: float = 0.0,
                 ffn: bool = True, chunk: int = 1 << 22, plg_direction: str = "x_minus_l") -> None:
        super().__init__()
        self.adj = nn.Parameter(torch.empty(num_classes, num_classes))
        nn.init.uniform_(self.adj, -1.0 / math.sqrt(num_classes), 1.0 / math.sqrt(num_classes))
        self.plg = PLGConv(channels, k, chunk, plg_direction)
        self.drop_path = DropPath(drop_path)
        self.ffn = FFN(channels, 4 * channels, drop_path) if ffn else nn.Identity()

    def forward(self, lab: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        lab = lab + self.drop_path(self.plg(lab, patches))
        lab = self.ffn(lab)
        Lt = _tokens(lab)                                     # (B, S, C) = L^T
        Lt = torch.baddbmm(Lt, self.adj.expand(Lt.shape[0], -1, -1), Lt)   # L^T + A L^T (Eq. 6)
        return _image(Lt, Lt.shape[1], 1)                     # (B, C, S, 1) channels-last view


class Stem(nn.Module):
    """CNN stem. Pyramid: conv s2 -> conv s2 -> conv s1 (4x down, widths C/2, C, C).
    Isotropic: four stride-2 convs and one stride-1 conv (16x down, widths C/8, C/4, C/2, C, C);
    with ``down=8`` three (widths C/4, C/2, C, C). Keys ``convs.<i>`` as in ViG.
    (B, in_chans, F, T) -> (B, C, F/f, T/f).
    """

    def __init__(self, in_chans: int, out: int, variant: str, down: int = 16) -> None:
        super().__init__()
        if variant == "pyramid":
            widths, strides = [out // 2, out, out], [2, 2, 1]
        elif down == 8:
            widths, strides = [out // 4, out // 2, out, out], [2, 2, 2, 1]
        else:
            widths, strides = [out // 8, out // 4, out // 2, out, out], [2, 2, 2, 2, 1]
        layers: list[nn.Module] = []
        cin = in_chans
        for i, (w, s) in enumerate(zip(widths, strides)):
            layers += [nn.Conv2d(cin, w, 3, s, 1), nn.BatchNorm2d(w)]
            if i < len(widths) - 1:
                layers.append(nn.GELU())
            cin = w
        self.convs = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the first conv sees the (B, in_chans, F, T) input; its output goes channels-last (one
        # small copy) so that every later conv / BN / graph op runs in the node-major layout
        for i, layer in enumerate(self.convs):
            x = layer(x)
            if i == 0:
                x = x.contiguous(memory_format=torch.channels_last)
        return x


# ================================================================================== model
class ATGNN(nn.Module):
    """ATGNN (pyramid or isotropic PGN, optional MLG blocks, Eq. 7-9 head).

    ``forward(x)``: x (B, T, F) time-major log-mel (the AST / ATGNN layout), (B, 1, F, T) or
    (B, F, T) with ``freq_major=True`` -> logits (B, S) (apply a sigmoid for Eq. 9's scores).
    Any input size whose sides are >= the total down-sampling works; the learnable positional
    encoding is bilinearly resized when the grid differs from ``config.input_size``.
    """

    def __init__(self, config: ATGNNConfig) -> None:
        super().__init__()
        self.config = cfg = config
        ch = cfg.channels
        f, t = cfg.input_size
        sf = cfg.stem_factor
        self.stem = Stem(cfg.in_chans, ch[0], cfg.variant, cfg.stem_factor)
        self.pos_embed = nn.Parameter(torch.zeros(1, ch[0], f // sf, t // sf))
        ks, ds = cfg.knn_schedule(), cfg.dilation_schedule()
        dpr = [float(v) for v in torch.linspace(0, cfg.drop_path, cfg.n_blocks)]
        layers: list[nn.Module] = []
        self.stage_ends: list[int] = []
        idx = 0
        for s, (c, nb) in enumerate(zip(ch, cfg.blocks)):
            if s > 0 and cfg.variant == "pyramid":
                layers.append(Downsample(ch[s - 1], c))
            r = cfg.reduce_ratios[s] if cfg.variant == "pyramid" else 1
            for _ in range(nb):
                layers.append(nn.Sequential(
                    Grapher(c, ks[idx], ds[idx], r, bool(cfg.relative_pos), dpr[idx], cfg.knn_chunk),
                    FFN(c, 4 * c, dpr[idx])))
                idx += 1
            self.stage_ends.append(len(layers) - 1)
        self.backbone = nn.Sequential(*layers)
        self.prediction = nn.Sequential(nn.Conv2d(ch[-1], cfg.head_dim, 1), nn.BatchNorm2d(cfg.head_dim),
                                        nn.GELU(), nn.Dropout(cfg.dropout),
                                        nn.Conv2d(cfg.head_dim, cfg.num_classes, 1))
        if cfg.use_mlg:
            S = cfg.num_classes
            self.label_embed = nn.Parameter(torch.zeros(1, ch[0], S, 1))
            nn.init.trunc_normal_(self.label_embed, std=0.02)
            self.label_proj = nn.ModuleList(
                [nn.Identity() if s == 0 or ch[s] == ch[s - 1] and cfg.variant == "isotropic"
                 else _conv_bn(ch[s - 1], ch[s]) for s in range(len(ch))])
            self.mlg_stages = nn.ModuleList([
                nn.ModuleList([MLGBlock(c, S, cfg.k_plg, cfg.drop_path, cfg.mlg_ffn, cfg.knn_chunk,
                                       cfg.plg_direction)
                               for _ in range(p)]) for c, p in zip(ch, cfg.mlg_blocks)])
            self.label_readout = nn.Parameter(torch.empty(S, ch[-1]))
            nn.init.uniform_(self.label_readout, -1.0 / math.sqrt(ch[-1]), 1.0 / math.sqrt(ch[-1]))
        self._init_convs()

    def _init_convs(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
                if m.kernel_size != (1, 1):
                    # stored channels-last (same values, keys and shapes): the conv then runs on
                    # channels-last activations without re-laying out its weight on every call
                    m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)

    # ---------------------------------------------------------------------------- helpers
    def _to_image(self, x: torch.Tensor, freq_major: bool) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1) if freq_major else x.transpose(1, 2).unsqueeze(1)
        elif x.ndim != 4:
            raise ValueError(f"ATGNN input must be (B, T, F), (B, F, T) or (B, 1, F, T); got {tuple(x.shape)}")
        if x.shape[1] != self.config.in_chans:
            raise ValueError(f"ATGNN expects {self.config.in_chans} input channel(s), got {tuple(x.shape)}")
        return x

    def _pos(self, hw: tuple[int, int]) -> torch.Tensor:
        pe = self.pos_embed
        if tuple(pe.shape[-2:]) != hw:
            pe = F.interpolate(pe, size=hw, mode="bilinear", align_corners=False)
        return pe

    def graph_modules(self) -> list[GraphConv]:
        """All PGN graph convolutions in order."""
        return [m for m in self.modules() if isinstance(m, GraphConv)]

    def cache_position_tables(self, input_size: tuple[int, int] | None = None,
                              device: Any = None) -> int:
        """Precompute every relative-position table for input ``(F, T)`` (ViG-style frozen tables
        kept as a cache, not as parameters). Returns the number of table elements cached."""
        f, t = input_size or self.config.input_size
        hw = (f // self.config.stem_factor, t // self.config.stem_factor)
        n = 0
        for layer in self.backbone:
            if isinstance(layer, Downsample):
                hw = ((hw[0] - 1) // 2 + 1, (hw[1] - 1) // 2 + 1)
                continue
            g = layer[0].graph_conv
            if g.relative_pos:
                g.cache_relative_pos(hw, device)
                n += int(g._rel_cache[(hw, g._r_eff(hw))].numel())
        return n

    def clear_position_tables(self) -> None:
        for g in self.graph_modules():
            g._rel_cache.clear()

    # ---------------------------------------------------------------------------- forward
    def forward_features(self, x: torch.Tensor, freq_major: bool = False
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Patch grid (B, C_last, H', W') and label embeddings (B, C_last, S, 1) (``None`` without MLG)."""
        x = self._to_image(x, freq_major)
        x = self.stem(x)
        x = (x + self._pos(tuple(x.shape[-2:]))).contiguous(memory_format=torch.channels_last)
        if not self.config.use_mlg:
            return self.backbone(x), None
        lab = self.label_embed.expand(x.shape[0], -1, -1, -1).contiguous(memory_format=torch.channels_last)
        stage = 0
        for i, blk in enumerate(self.backbone):
            x = blk(x)
            if stage < len(self.stage_ends) and i == self.stage_ends[stage]:
                patches = x.flatten(2).unsqueeze(-1)          # (B, C, N, 1)
                if isinstance(self.label_proj[stage], nn.Sequential):
                    lab = _image(_pointwise(self.label_proj[stage], _tokens(lab)), lab.shape[2], 1)
                for mlg in self.mlg_stages[stage]:
                    lab = mlg(lab, patches)
                stage += 1
        return x, lab

    def forward_parts(self, x: torch.Tensor, freq_major: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Patch logits Y_patch (Eq. 7) and label logits Y_hat (Eq. 8), each (B, S)."""
        feats, lab = self.forward_features(x, freq_major)
        patch = self.prediction(F.adaptive_avg_pool2d(feats, 1)).flatten(1)
        if lab is None:
            return patch, None
        label = torch.einsum("bcs,sc->bs", lab.squeeze(-1), self.label_readout)
        return patch, label

    def forward(self, x: torch.Tensor, freq_major: bool = False) -> torch.Tensor:
        patch, label = self.forward_parts(x, freq_major)
        return patch if label is None else patch + label     # Eq. 9 before the sigmoid

    def adjacency(self) -> list[torch.Tensor]:
        """Learned LLG adjacency matrices (S, S), one per MLG block, in order (detached)."""
        if not self.config.use_mlg:
            return []
        return [b.adj.detach().clone() for st in self.mlg_stages for b in st]


# ================================================================================== counting
def position_table_elements(config: ATGNNConfig, input_size: tuple[int, int] | None = None) -> int:
    """Elements the reference code would store as frozen relative-position tables
    (one ``(N, N / r^2)`` table per pyramid Grapher) for input ``(F, T)``; 0 without them."""
    if not config.relative_pos:
        return 0
    f, t = input_size or config.input_size
    h, w = f // config.stem_factor, t // config.stem_factor
    total = 0
    for s, nb in enumerate(config.blocks):
        if s > 0:
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        r = max(1, min(config.reduce_ratios[s], h, w))
        total += nb * (h * w) * ((h // r) * (w // r))
    return int(total)


def count_atgnn(model: ATGNN, input_size: tuple[int, int] | None = None, device: str = "meta",
                exclude_position_tables: bool = True) -> dict[str, float]:
    """Parameter and compute counts of one ATGNN at one input, with stated conventions.

    Returns ``trainable`` (elements of trainable parameters), ``all`` (= trainable: this
    implementation has no frozen parameters), ``frozen_tables_ref`` (elements the reference
    code stores as frozen relative-position tables at this input), ``buffers`` (BN statistics),
    ``gmacs`` (multiply-accumulates of one forward pass at batch 1 by
    ``torch.utils.flop_counter.FlopCounterMode`` / 2 - convs, matmuls, k-NN distance matmuls;
    BN / elementwise / top-k not counted) and ``gflops_2x`` = 2 * gmacs.
    With ``exclude_position_tables`` the tables are precomputed (as ViG does) before counting,
    so their construction is not counted. ``device="meta"`` counts without computing.
    """
    cfg = model.config
    f, t = input_size or cfg.input_size
    params = count_parameters(model)
    m = copy.deepcopy(model).to(device).eval()
    m.requires_grad_(False)
    if exclude_position_tables:
        m.cache_position_tables((f, t), device=device)
    x = torch.zeros(1, t, f, device=device)
    gmacs = float(count_flops(m, x))
    del m
    return {"trainable": params["trainable"], "all": params["all"], "buffers": params["buffers"],
            "frozen_tables_ref": position_table_elements(cfg, (f, t)), "gmacs": gmacs,
            "gflops_2x": 2 * gmacs}


def knn_peak_memory(n: int, m: int, c: int, k: int, chunk_elements: int = 1 << 22,
                    bytes_per: int = 4) -> dict[str, int]:
    """Analytic peak bytes of one k-NN search (batch 1): dense (N x M distance matrix) vs.
    chunked (one rows x M block plus the N x k result and the features)."""
    rows = max(1, chunk_elements // max(1, m))
    feats = (n + m) * c * bytes_per
    return {"dense": n * m * bytes_per + feats + n * k * 8,
            "chunked": min(rows, n) * m * bytes_per * 2 + feats + n * k * 8}


# ================================================================================== loss
class LabelNoiseRobustBCE(nn.Module):
    """BCE with logits; optional label smoothing towards 0.5 by ``eps`` as a simple stand-in for
    PSLA's label enhancement (which needs the AudioSet ontology and a teacher model).

    logits (B, S), targets (B, S) in [0, 1] -> scalar.
    """

    def __init__(self, eps: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= eps < 0.5:
            raise ValueError(f"LabelNoiseRobustBCE eps={eps} must lie in [0, 0.5)")
        self.eps = float(eps)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        t = targets.float()
        if self.eps:
            t = t * (1 - 2 * self.eps) + self.eps
        return F.binary_cross_entropy_with_logits(logits, t)


def atgnn_loss(eps: float = 0.0) -> LabelNoiseRobustBCE:
    """The training loss (Section III-B: BCE; ``eps`` > 0 smooths labels)."""
    return LabelNoiseRobustBCE(eps)


# ================================================================================== ViG weights
@dataclass
class VigLoadReport:
    """What :func:`load_vig_weights` did, key by key (model key names)."""

    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"loaded {len(self.loaded)} tensors ({len(self.adapted)} adapted), "
                f"skipped {len(self.skipped)} checkpoint keys, {len(self.missing)} model keys "
                "left at initialisation")


_PREFIXES = ("module.", "net.", "model.", "state_dict.")


def _strip_prefix(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p):], True
    return key


def map_vig_state_dict(vig: Mapping[str, torch.Tensor], model: ATGNN
                       ) -> tuple[dict[str, torch.Tensor], VigLoadReport]:
    """Map an ImageNet ViG state dict (``pvig_*`` / ``vig_*`` of huawei-noah, or the public ATGNN
    code) onto ``model``'s keys.

    * keys are matched by name after stripping ``module.`` / ``net.`` / ``model.`` prefixes;
    * ``stem.convs.0.weight`` (3 input channels) is summed over its RGB channels for a 1-channel
      model (the response to a grey image is preserved);
    * ``pos_embed`` (1, C, 56, 56) / (1, C, 14, 14) is resized bicubically to the model's grid;
    * ``*.relative_pos`` tables are skipped (deterministic; recomputed for the true grid);
    * ``prediction.4.*`` (ImageNet classes) is skipped when the class count differs;
    * any other shape mismatch or an unknown key raises ``ValueError`` naming the key.
    Returns (state dict to load with ``strict=False``, report).
    """
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    rep = VigLoadReport()
    for raw, val in vig.items():
        key = _strip_prefix(raw)
        if key.endswith("relative_pos"):
            rep.skipped[key] = "relative-position table (recomputed for the spectrogram grid)"
            continue
        if key not in own:
            if key.startswith("prediction.4") or key.startswith("head"):
                rep.skipped[key] = "classifier not in this model"
                continue
            raise ValueError(f"ViG checkpoint key {raw!r} has no counterpart in this ATGNN "
                             f"({model.config.variant}, channels {model.config.channels}, "
                             f"blocks {model.config.blocks}); is it the right ViG size?")
        target = own[key]
        val = torch.as_tensor(val)
        if tuple(val.shape) == tuple(target.shape):
            out[key] = val.to(target.dtype)
            rep.loaded.append(key)
        elif key == "stem.convs.0.weight" and val.shape[0] == target.shape[0] and val.shape[2:] == target.shape[2:]:
            if target.shape[1] == 1:
                out[key] = val.sum(dim=1, keepdim=True).to(target.dtype)
            else:
                reps = math.ceil(target.shape[1] / val.shape[1])
                w = val.repeat(1, reps, 1, 1)[:, :target.shape[1]] * (val.shape[1] / target.shape[1])
                out[key] = w.to(target.dtype)
            rep.loaded.append(key)
            rep.adapted[key] = f"{val.shape[1]}-channel stem -> {target.shape[1]} channel(s) (sum over RGB)"
        elif key == "pos_embed" and val.shape[:2] == target.shape[:2]:
            out[key] = F.interpolate(val.float(), size=tuple(target.shape[-2:]), mode="bicubic",
                                     align_corners=False).to(target.dtype)
            rep.loaded.append(key)
            rep.adapted[key] = f"resized {tuple(val.shape[-2:])} -> {tuple(target.shape[-2:])} (bicubic)"
        elif key.startswith("prediction.4"):
            rep.skipped[key] = f"classifier for {val.shape[0]} classes (model has {target.shape[0]})"
        else:
            raise ValueError(f"ViG checkpoint key {raw!r} has shape {tuple(val.shape)} but the model "
                             f"expects {tuple(target.shape)}")
    rep.missing = [k for k in own if k not in out]
    return out, rep


def load_vig_weights(model: ATGNN, checkpoint: str | Path | Mapping[str, Any]) -> VigLoadReport:
    """Initialise the PGN of ``model`` from an ImageNet ViG checkpoint (file or state dict).

    The file may hold the state dict directly or under ``state_dict`` / ``model``; it is loaded
    onto the device of ``model``'s parameters. The MLG blocks
    and (with a different class count) the classifier keep their initialisation; see
    :func:`map_vig_state_dict` for the mapping rules. Returns a :class:`VigLoadReport`.
    """
    if isinstance(checkpoint, (str, Path)):
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"ViG checkpoint {path} does not exist")
        dev = next(iter(model.parameters())).device
        obj = torch.load(path, map_location=dev, weights_only=True)
    else:
        obj = checkpoint
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ValueError(f"ViG checkpoint {checkpoint!r} does not hold a state dict")
    mapped, rep = map_vig_state_dict(obj, model)
    model.load_state_dict(mapped, strict=False)
    return rep


# ================================================================================== PSLA baseline
#: PSLA sizes: name -> (EfficientNet-B2 width, depth multipliers). ``full`` is B2's own
#: (1.1, 1.2); ``cpu`` a narrower, shallower network of the same design for two cores.
PSLA_SCALES: dict[str, tuple[float, float]] = {"full": (1.1, 1.2), "cpu": (0.35, 0.5)}


def _psla_init(conv: nn.Conv2d) -> None:
    """PSLA's ``init_layer``: uniform in +- sqrt(2 / fan_in) * sqrt(3), zero bias."""
    n = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    bound = math.sqrt(2.0 / n) * math.sqrt(3.0)
    nn.init.uniform_(conv.weight, -bound, bound)
    nn.init.zeros_(conv.bias)


class PSLA(nn.Module):
    """The PSLA tagger (Gong, Chung, Glass 2021, "PSLA: Improving Audio Tagging with
    Pretraining, Sampling, Labeling, and Aggregation"; reference ``EffNetAttention`` with
    ``MHeadAttention`` of YuanGongND/psla), the baseline of ATGNN's Tables II and III, built on
    torchvision's EfficientNet.

    ``forward(x)``: x (B, T, F) time-major log-mel -> logits (B, C). The network: EfficientNet
    features of the one-channel (B, 1, F, T) input (a one-channel stem, as the reference builds
    it), the mean over the remaining frequency rows (the reference's ``AvgPool2d((4, 1))`` over
    the 4 rows a 128-bin input leaves), then ``head_num`` attention heads: per head a sigmoid
    attention and a sigmoid class map (1x1 convolutions), the attention normalised over time, the
    heads summed with learned weights. The reference outputs these probabilities and trains with
    BCE on them; the logits returned here are their ``logit`` (clamped to [1e-7, 1 - 1e-7] as
    the reference clamps its attention), so BCE-with-logits on them is that same loss.

    ``scale``: ``full`` (EfficientNet-B2: 13.6 M parameters with 527 classes, Table II's PSLA
    row) or ``cpu`` (:data:`PSLA_SCALES`). :meth:`load_imagenet` loads torchvision's ImageNet
    EfficientNet-B2 weights into the features (the stem excepted: the reference re-creates it
    for one channel), the initialisation PSLA uses.
    """

    def __init__(self, num_classes: int = 527, scale: str = "full", head_num: int = 4) -> None:
        super().__init__()
        from torchvision.models import EfficientNet
        from torchvision.models.efficientnet import _efficientnet_conf
        if scale not in PSLA_SCALES:
            raise ValueError(f"PSLA scale {scale!r}: use one of {list(PSLA_SCALES)}")
        if head_num < 1:
            raise ValueError(f"PSLA head_num must be >= 1, got {head_num}")
        width, depth = PSLA_SCALES[scale]
        setting, last = _efficientnet_conf("efficientnet_b2", width_mult=width, depth_mult=depth)
        features = EfficientNet(setting, dropout=0.3, last_channel=last).features
        stem = features[0][0]
        features[0][0] = nn.Conv2d(1, stem.out_channels, stem.kernel_size, stem.stride,
                                   stem.padding, bias=False)
        nn.init.kaiming_normal_(features[0][0].weight, mode="fan_out")
        self.features, self.scale, self.num_classes = features, scale, int(num_classes)
        channels = features[-1][0].out_channels
        self.att = nn.ModuleList(nn.Conv2d(channels, num_classes, 1) for _ in range(head_num))
        self.cla = nn.ModuleList(nn.Conv2d(channels, num_classes, 1) for _ in range(head_num))
        for conv in (*self.att, *self.cla):
            _psla_init(conv)
        self.head_weight = nn.Parameter(torch.full((head_num,), 1.0 / head_num))

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, C) attention-pooled probabilities (the reference's output)."""
        h = self.features(x.unsqueeze(1).transpose(2, 3))          # (B, C', F', T')
        h = h.mean(dim=2, keepdim=True).transpose(2, 3)             # (B, C', T', 1)
        out = 0.0
        for w, att_conv, cla_conv in zip(self.head_weight, self.att, self.cla):
            att = torch.sigmoid(att_conv(h))[..., 0].clamp(1e-7, 1.0 - 1e-7)   # (B, C, T')
            cla = torch.sigmoid(cla_conv(h))[..., 0]
            out = out + w * (att / att.sum(dim=2, keepdim=True) * cla).sum(dim=2)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logit(self.probabilities(x).clamp(1e-7, 1.0 - 1e-7))

    def load_imagenet(self, path: str | Path) -> list[str]:
        """Load torchvision's ImageNet EfficientNet-B2 file (``efficientnet_b2_rwightman-*.pth``,
        full size only) into the features, the one-channel stem excepted; returns the keys left
        out. Shapes are checked key by key (``ValueError`` naming the first mismatch)."""
        if self.scale != "full":
            raise ValueError("load_imagenet: the ImageNet weights fit the full-size PSLA only")
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
        own = self.features.state_dict()
        skipped, take = [], {}
        for k, v in sd.items():
            if not k.startswith("features."):
                skipped.append(k)
                continue
            key = k[len("features."):]
            if key == "0.0.weight":
                skipped.append(k)
                continue
            if key not in own or own[key].shape != v.shape:
                raise ValueError(f"{path}: key {k} {tuple(v.shape)} does not fit the PSLA features "
                                 f"({tuple(own[key].shape) if key in own else 'absent'})")
            take[key] = v
        missing = [k for k in own if k not in take and k != "0.0.weight"]
        if missing:
            raise ValueError(f"{path}: {len(missing)} feature key(s) missing, e.g. {missing[0]}")
        self.features.load_state_dict({**own, **take})
        return skipped
