"""THGCL: temporal heterogeneous graph contrastive learning for audio-visual event classification.

Paper: Y. Chen, Y. Xiao, J. Huang (papers/thgcl_zh.txt, in Chinese; REFERENCE_FACTS.md section 2).
Base model: TMac (Liu et al., ACM MM 2023), whose graph construction comes from
AmirSh15/VAED_HeterGraph ``utils/dataloader.py`` (span / dilation rule reproduced below).

Pieces (all batched: no Python loop over clips in any forward pass):

* **Graph** (:func:`build_graph`). Every clip has the same node layout (P_a audio segments,
  P_v video chunks), so one :class:`TemporalGraph` holds the edge masks and the deterministic
  parts of the edge weights for all clips. Intra-modal edges: node ``i`` links to
  ``i + k * dilation`` for ``k = -span..span`` (self included); at the borders the window is
  shifted (not cut) so every node keeps the same degree, as in VAED/TMac. Cross-modal edges
  (video -> audio) exist only between time-matching nodes: video chunk ``j`` (start time
  ``j * chunk``) links to the ``cross_span`` audio segments starting at the audio node whose start
  time is nearest (window shifted inside ``[0, P_a)``).
* **Edge weights.** Gaussian (Eq. 1): ``exp(-(P_i - P_j)^2 / (2 (Pmax - Pmin + 1)^2))`` with
  Pmax / Pmin the largest / smallest index of node ``i``'s neighbourhood. Hawkes-style (Eq. 2):
  ``sigmoid(log(xi) / log(1 - xi) + (R + 1 - |P_i - P_j|) / (R + 1)) / tau`` with
  ``R = Pmax - Pmin`` and ``xi ~ U(0, 1)``. *Our reading of Eq. 2*: the printed second term
  ``(Pa_max' - Pv_i + 1) / (Pa_max' - Pa_min' + 1)`` does not depend on the edge's audio endpoint,
  so it would give every edge of a video node the same weight; we use the elapsed time
  ``|P_i - P_j|`` between the edge's endpoints (in the neighbour modality's index units), which
  equals the printed expression with ``Pv_i`` replaced by the audio endpoint's index when the
  video node sits at the start of its audio window (our construction), and decays as a Hawkes
  kernel does. ``xi`` is drawn per edge and per clip in training; in evaluation ``xi = 0.5``
  (``log(xi)/log(1-xi) = 1``, the median). Either kernel can be used for either edge family
  (Table 2: Gaussian + Hawkes, both Hawkes = TMac setting, both Gaussian).
* **THGN** (:class:`THGN`): linear maps of both inputs to ``embed_dim`` (paper d = 128), then
  ``num_layers`` heterogeneous layers ``X^l = relu(A X^{l-1} W)``: audio <- GCN-A(audio) +
  GAT-AV(video -> audio), video <- GCN-V(video) (TMac layer, dropout 0.1). GCN propagation uses
  the weighted adjacency with symmetric normalisation ``D^-1/2 A D^-1/2``; the GAT attention
  (single head, PyG-style separate source / target maps) is multiplied by the cross-modal edge
  weight. Attention pooling (gate ``Linear(hidden, 1)``, softmax over nodes) over the audio
  nodes gives the graph embedding used by the classifier ``Linear(hidden, C)`` (the learnable
  pooling of TMac [19]); a second pooling over the video nodes and one linear projection head
  per modality give the embeddings of the contrastive loss.
* **Losses**: :func:`focal_loss` (sigmoid focal, alpha 0.5, gamma 2 as TMac), :func:`nt_xent`
  (Eq. 4, both directions), :func:`make_batch_fn` builds ``L = w_FL L_FL + w_CL L_CL`` (Eq. 5,
  paper weights 1.0 / 0.1) or plain BCE (the paper's "cross-entropy" curve, multi-label here).
* **Features** for the synthetic world: :func:`audio_segment_embeddings` (960 ms segments every
  ``hop_s`` -> 128-d) through the VGGish backbone named by ``audio_encoder``
  (:func:`load_audio_encoder`: the shared CPU-sized stand-in pre-trained on the world of seed 0,
  or a user checkpoint; ``"stats"`` = fixed log-mel mean / std, no network) and
  :func:`project_visual` (the world's 250 ms pseudo-visual vectors -> 1024-d by a fixed random
  Gaussian projection, documented stand-in for S3D features: it adds no information, it only
  gives the paper's input width). :func:`tmac_av_features` reads the real TMac feature file.
* **Notebook helpers**: :func:`run_variants` (train, score, record), :func:`parameter_table`
  (counts at the paper's sizes), :func:`leader_share` (Fig. 3b), :func:`robustness_sweep`
  (misalignment / visual-noise sweep beyond the paper), :func:`draw_graph`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GraphConfig", "TemporalGraph", "temporal_neighbours", "cross_neighbours", "build_graph",
    "gaussian_weights", "hawkes_weights", "edge_weights", "normalize_adjacency",
    "GCNLayer", "CrossGAT", "AttentionPool", "THGN", "AudioOnlyMLP", "LateFusionMLP",
    "focal_loss", "nt_xent", "make_batch_fn", "AVFeatures", "av_collate", "audio_segment_embeddings",
    "project_visual", "synthetic_av_features", "tmac_av_features", "VARIANTS", "build_variant",
    "train_variant", "evaluate_model", "THGCLError", "world_features", "run_variants",
    "chapter_features", "draw_graph", "plot_curves", "load_audio_encoder", "leader_share", "parameter_table",
    "robustness_sweep",
]

KERNELS = ("gaussian", "hawkes", "uniform")


class THGCLError(ValueError):
    """Bad THGCL configuration or input; the message names the parameter / file."""


# =============================================================================== graph
@dataclass(frozen=True)
class GraphConfig:
    """Temporal heterogeneous graph parameters (paper section 3.1.2 defaults).

    Attributes:
        audio_span, video_span, cross_span: temporal spans (paper 6 / 4 / 3).
        audio_dilation, video_dilation: dilations (paper 3 / 4).
        intra_kernel, cross_kernel: ``"gaussian"``, ``"hawkes"`` or ``"uniform"`` (weight 1 on
            every edge: no temporal weighting, used beyond the paper) (paper: Gaussian
            intra-modal, Hawkes cross-modal).
        tau: Hawkes temperature (Eq. 2); not printed in the paper, 1.0 here.
        audio_hop_s: start-time step of the audio segments (s); video_chunk_s: video chunk (s).
    """

    audio_span: int = 6
    video_span: int = 4
    cross_span: int = 3
    audio_dilation: int = 3
    video_dilation: int = 4
    intra_kernel: str = "gaussian"
    cross_kernel: str = "hawkes"
    tau: float = 1.0
    audio_hop_s: float = 0.25
    video_chunk_s: float = 0.25

    def __post_init__(self) -> None:
        for name in ("audio_span", "video_span", "cross_span", "audio_dilation", "video_dilation"):
            if int(getattr(self, name)) < 1:
                raise THGCLError(f"GraphConfig.{name}={getattr(self, name)} must be >= 1")
        for name in ("intra_kernel", "cross_kernel"):
            if getattr(self, name) not in KERNELS:
                raise THGCLError(f"GraphConfig.{name}={getattr(self, name)!r} must be one of {KERNELS}")
        if not self.tau > 0 or not self.audio_hop_s > 0 or not self.video_chunk_s > 0:
            raise THGCLError("GraphConfig.tau, audio_hop_s and video_chunk_s must be > 0")


def temporal_neighbours(n: int, span: int, dilation: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dilated temporal neighbourhoods of ``n`` nodes (VAED/TMac rule, self included).

    Node ``i`` gets ``i + k * dilation`` for ``k = -span..span``; a window crossing a border is
    shifted by whole dilation steps so every node keeps ``2 span + 1`` neighbours (when the
    graph is long enough; otherwise out-of-range entries are masked).
    Returns ``(index (n, 2 span + 1) long, valid (n, 2 span + 1) bool)``.
    """
    if n < 1:
        raise THGCLError(f"temporal_neighbours: n={n} must be >= 1")
    i = torch.arange(n)
    start = i - span * dilation
    k = torch.clamp(torch.div(-start + dilation - 1, dilation, rounding_mode="floor"), min=0)
    start = start + k * dilation
    end = start + 2 * span * dilation
    m = torch.clamp(torch.div(end - (n - 1) + dilation - 1, dilation, rounding_mode="floor"), min=0)
    start = start - m * dilation
    idx = start[:, None] + dilation * torch.arange(2 * span + 1)[None, :]
    valid = (idx >= 0) & (idx < n)
    return idx.clamp(0, n - 1), valid


def cross_neighbours(num_audio: int, num_video: int, cross_span: int, audio_hop_s: float,
                     video_chunk_s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio neighbours of each video node: the ``cross_span`` audio segments whose start times
    begin at the one nearest to the video chunk's start (window kept inside ``[0, P_a)``).

    Returns ``(index (P_v, cross_span) long, valid (P_v, cross_span) bool)``.
    """
    span = min(cross_span, num_audio)
    t_v = torch.arange(num_video, dtype=torch.float64) * video_chunk_s
    start = torch.round(t_v / audio_hop_s).long().clamp(0, num_audio - span)
    idx = start[:, None] + torch.arange(span)[None, :]
    return idx, torch.ones_like(idx, dtype=torch.bool)


def _dense(index: torch.Tensor, valid: torch.Tensor, n_cols: int) -> torch.Tensor:
    """(n, k) neighbour lists -> (n, n_cols) bool mask (row = receiving node)."""
    mask = torch.zeros(index.shape[0], n_cols, dtype=torch.bool)
    rows = torch.arange(index.shape[0])[:, None].expand_as(index)
    mask[rows[valid], index[valid]] = True
    return mask


def _range_terms(pos_i: torch.Tensor, pos_j: torch.Tensor, mask: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per edge: |P_i - P_j| and the neighbourhood range R_i = Pmax - Pmin, both (n, m) float64.

    pos_i (n,) positions of receiving nodes, pos_j (m,) positions of senders (same units).
    """
    pj = pos_j[None, :].expand(mask.shape)
    big = torch.finfo(torch.float64).max
    pmax = torch.where(mask, pj, torch.full_like(pj, -big)).amax(dim=1, keepdim=True)
    pmin = torch.where(mask, pj, torch.full_like(pj, big)).amin(dim=1, keepdim=True)
    dist = (pos_i[:, None] - pos_j[None, :]).abs()
    return dist, (pmax - pmin).expand(mask.shape)


def gaussian_weights(pos_i: torch.Tensor, pos_j: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``exp(-|P_i - P_j|^2 / (2 (Pmax - Pmin + 1)^2))`` on edges, 0 elsewhere. (n, m)."""
    dist, rng = _range_terms(pos_i.double(), pos_j.double(), mask)
    w = torch.exp(-dist ** 2 / (2.0 * (rng + 1.0) ** 2))
    return torch.where(mask, w, torch.zeros_like(w)).float()


def _hawkes_term(pos_i: torch.Tensor, pos_j: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Deterministic part of Eq. 2: ``(R + 1 - min(|P_i - P_j|, R)) / (R + 1)`` on edges (our
    reading; the clamp matters only for video nodes past the last audio window start)."""
    dist, rng = _range_terms(pos_i.double(), pos_j.double(), mask)
    term = (rng + 1.0 - torch.minimum(dist, rng)) / (rng + 1.0)  # in [1 / (R + 1), 1]
    return torch.where(mask, term, torch.zeros_like(term)).float()


def hawkes_weights(term: torch.Tensor, mask: torch.Tensor, tau: float = 1.0,
                   xi: torch.Tensor | float = 0.5) -> torch.Tensor:
    """Eq. 2: ``sigmoid(log(xi) / log(1 - xi) + term) / tau`` on edges, 0 elsewhere.

    term, mask (n, m); xi a float or a tensor broadcastable to (B, n, m) (drawn U(0, 1) in
    training). Returns (n, m) or (B, n, m).
    """
    xi_t = torch.as_tensor(xi, dtype=term.dtype, device=term.device).clamp(1e-6, 1 - 1e-6)
    w = torch.sigmoid(torch.log(xi_t) / torch.log1p(-xi_t) + term) / tau
    return torch.where(mask, w, torch.zeros_like(w))


@dataclass
class TemporalGraph:
    """Node layout, edge masks and deterministic weight parts shared by every clip.

    Masks are (receivers, senders): ``audio_mask`` (P_a, P_a), ``video_mask`` (P_v, P_v),
    ``cross_mask`` (P_a, P_v) (video -> audio). ``*_gauss`` are the Eq. 1 weights, ``*_term``
    the deterministic part of Eq. 2 (same shapes). ``audio_time`` (P_a,) / ``video_time`` (P_v,)
    are node start times in seconds.
    """

    config: GraphConfig
    audio_mask: torch.Tensor
    video_mask: torch.Tensor
    cross_mask: torch.Tensor
    audio_gauss: torch.Tensor
    video_gauss: torch.Tensor
    cross_gauss: torch.Tensor
    audio_term: torch.Tensor
    video_term: torch.Tensor
    cross_term: torch.Tensor
    audio_time: torch.Tensor
    video_time: torch.Tensor

    @property
    def num_audio(self) -> int:
        return int(self.audio_mask.shape[0])

    @property
    def num_video(self) -> int:
        return int(self.video_mask.shape[0])

    def num_edges(self) -> dict[str, int]:
        """Directed edge counts per family (self loops included in the intra-modal ones)."""
        return {"audio-audio": int(self.audio_mask.sum()), "video-video": int(self.video_mask.sum()),
                "video-audio": int(self.cross_mask.sum())}


def build_graph(num_audio: int, num_video: int, config: GraphConfig = GraphConfig()) -> TemporalGraph:
    """The temporal heterogeneous graph of a clip with ``num_audio`` / ``num_video`` nodes."""
    c = config
    a_idx, a_ok = temporal_neighbours(num_audio, c.audio_span, c.audio_dilation)
    v_idx, v_ok = temporal_neighbours(num_video, c.video_span, c.video_dilation)
    x_idx, x_ok = cross_neighbours(num_audio, num_video, c.cross_span, c.audio_hop_s, c.video_chunk_s)
    a_mask = _dense(a_idx, a_ok, num_audio)
    v_mask = _dense(v_idx, v_ok, num_video)
    x_mask = _dense(x_idx, x_ok, num_audio).T.contiguous()  # (P_a, P_v): audio receives
    pa = torch.arange(num_audio, dtype=torch.float64)
    pv = torch.arange(num_video, dtype=torch.float64)
    pv_in_a = pv * c.video_chunk_s / c.audio_hop_s  # video times in audio-index units
    # cross edges: receiver = audio node k, sender = video node j; the neighbourhood whose range
    # enters Eqs. 1/2 is the video node's audio window, so compute on the transposed layout.
    x_gauss = gaussian_weights(pv_in_a, pa, x_mask.T).T.contiguous()
    x_term = _hawkes_term(pv_in_a, pa, x_mask.T).T.contiguous()
    return TemporalGraph(c, a_mask, v_mask, x_mask,
                         gaussian_weights(pa, pa, a_mask), gaussian_weights(pv, pv, v_mask), x_gauss,
                         _hawkes_term(pa, pa, a_mask), _hawkes_term(pv, pv, v_mask), x_term,
                         (pa * c.audio_hop_s).float(), (pv * c.video_chunk_s).float())


def edge_weights(graph: TemporalGraph, family: str, kernel: str, tau: float = 1.0,
                 xi: torch.Tensor | float = 0.5) -> torch.Tensor:
    """Weighted adjacency of one edge family (``audio``, ``video``, ``cross``) with ``kernel``.

    Returns (n, m), or (B, n, m) when ``xi`` is a (B, n, m) tensor and the kernel is Hawkes.
    """
    if family not in ("audio", "video", "cross"):
        raise THGCLError(f"edge_weights: family={family!r} must be audio, video or cross")
    if kernel not in KERNELS:
        raise THGCLError(f"edge_weights: kernel={kernel!r} must be one of {KERNELS}")
    mask = getattr(graph, f"{family}_mask")
    if kernel == "gaussian":
        return getattr(graph, f"{family}_gauss")
    if kernel == "uniform":
        return mask.float()
    return hawkes_weights(getattr(graph, f"{family}_term"), mask, tau, xi)


def normalize_adjacency(adj: torch.Tensor) -> torch.Tensor:
    """Symmetric GCN normalisation ``D_r^-1/2 A D_c^-1/2`` of (..., n, m) weights (D = row /
    column sums; zero-degree nodes get 0)."""
    dr = adj.sum(-1, keepdim=True)
    dc = adj.sum(-2, keepdim=True)
    dr = torch.where(dr > 0, dr.rsqrt(), torch.zeros_like(dr))
    dc = torch.where(dc > 0, dc.rsqrt(), torch.zeros_like(dc))
    return dr * adj * dc


# =============================================================================== layers
class GCNLayer(nn.Module):
    """``A_hat X W + b`` for a batch: X (B, n, d_in), A_hat (n, n) or (B, n, n) -> (B, n, d_out)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, d_out, bias=False)
        self.bias = nn.Parameter(torch.zeros(d_out))

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return torch.matmul(adj, self.lin(x)) + self.bias


class CrossGAT(nn.Module):
    """Single-head GAT from senders (video) to receivers (audio), PyG ``GATConv`` bipartite layout.

    ``e_kj = LeakyReLU(a_dst . W_dst x_k + a_src . W_src x_j)``, softmax over the senders j linked
    to k, multiplied by the edge weight ``w_kj``; output ``sum_j alpha_kj W_src x_j + b``.
    x_dst (B, P_a, d_in), x_src (B, P_v, d_in), mask (P_a, P_v) bool, weight (P_a, P_v) or
    (B, P_a, P_v) -> (B, P_a, d_out).
    """

    def __init__(self, d_in: int, d_out: int, negative_slope: float = 0.2,
                 d_src: int | None = None) -> None:
        super().__init__()
        self.lin_src = nn.Linear(d_src or d_in, d_out, bias=False)
        self.lin_dst = nn.Linear(d_in, d_out, bias=False)
        self.att_src = nn.Parameter(torch.empty(d_out))
        self.att_dst = nn.Parameter(torch.empty(d_out))
        self.bias = nn.Parameter(torch.zeros(d_out))
        self.negative_slope = negative_slope
        bound = 1.0 / math.sqrt(d_out)
        nn.init.uniform_(self.att_src, -bound, bound)
        nn.init.uniform_(self.att_dst, -bound, bound)

    def attention(self, x_dst: torch.Tensor, x_src: torch.Tensor, mask: torch.Tensor,
                  weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (alpha (B, P_a, P_v) weighted attention, W_src x_src (B, P_v, d_out))."""
        hs, hd = self.lin_src(x_src), self.lin_dst(x_dst)
        logits = (hd @ self.att_dst)[:, :, None] + (hs @ self.att_src)[:, None, :]
        logits = F.leaky_relu(logits, self.negative_slope).masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(logits, dim=-1)
        alpha = torch.nan_to_num(alpha, nan=0.0) * weight  # receivers without senders -> 0
        return alpha, hs

    def forward(self, x_dst: torch.Tensor, x_src: torch.Tensor, mask: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
        alpha, hs = self.attention(x_dst, x_src, mask, weight)
        return alpha @ hs + self.bias


class AttentionPool(nn.Module):
    """Learnable pooling: softmax over nodes of ``Linear(d, 1)``; (B, n, d) -> (B, d)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.gate = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.softmax(self.gate(x), dim=1)  # (B, n, 1)
        return (a * x).sum(dim=1)


class THGN(nn.Module):
    """Temporal heterogeneous graph network (+ contrastive heads).

    Input: ``audio`` (B, P_a, audio_dim), ``video`` (B, P_v, video_dim). Output dict:
    ``logits`` (B, C), ``z_audio`` / ``z_video`` (B, hidden) contrastive embeddings (projected
    pooled graph embeddings), ``graph_embedding`` (B, hidden) (pooled audio nodes).

    Args:
        num_classes: C. audio_dim / video_dim: input widths (paper 128 / 1024).
        num_audio / num_video: nodes per clip (P_a, P_v) - fixes the graph.
        graph: :class:`GraphConfig`. embed_dim: d of the input maps (paper 128; ``None``: no
            input maps, the first layer reads the raw features as in TMac).
        hidden: hidden width (paper 512). num_layers: paper 4. dropout: TMac 0.1.
        contrastive_heads: add the two ``Linear(hidden, hidden)`` projection heads.
    """

    def __init__(self, num_classes: int, num_audio: int, num_video: int, audio_dim: int = 128,
                 video_dim: int = 1024, graph: GraphConfig = GraphConfig(), embed_dim: int | None = 128,
                 hidden: int = 512, num_layers: int = 4, dropout: float = 0.1,
                 contrastive_heads: bool = True) -> None:
        super().__init__()
        if num_layers < 1 or hidden < 1 or (embed_dim is not None and embed_dim < 1) or num_classes < 1:
            raise THGCLError("THGN: num_layers, hidden, embed_dim and num_classes must be >= 1")
        self.graph_config = graph
        g = build_graph(num_audio, num_video, graph)
        self.num_audio, self.num_video = num_audio, num_video
        for name in ("audio_mask", "video_mask", "cross_mask", "audio_gauss", "video_gauss",
                     "cross_gauss", "audio_term", "video_term", "cross_term"):
            self.register_buffer(name, getattr(g, name), persistent=False)
        if embed_dim is None:  # TMac: the first layer reads the raw 128 / 1024-d features
            self.embed_audio, self.embed_video = nn.Identity(), nn.Identity()
            da, dv = [audio_dim], [video_dim]
        else:
            self.embed_audio = nn.Linear(audio_dim, embed_dim)
            self.embed_video = nn.Linear(video_dim, embed_dim)
            da, dv = [embed_dim], [embed_dim]
        da, dv = da + [hidden] * num_layers, dv + [hidden] * num_layers
        self.gcn_a = nn.ModuleList(GCNLayer(i, o) for i, o in zip(da[:-1], da[1:]))
        self.gcn_v = nn.ModuleList(GCNLayer(i, o) for i, o in zip(dv[:-1], dv[1:]))
        self.gat_av = nn.ModuleList(CrossGAT(i, o, d_src=s) for i, o, s in zip(da[:-1], da[1:], dv[:-1]))
        self.dropout = nn.Dropout(dropout)
        self.pool_audio = AttentionPool(hidden)
        self.pool_video = AttentionPool(hidden)
        self.classifier = nn.Linear(hidden, num_classes)
        self.proj_audio = nn.Linear(hidden, hidden) if contrastive_heads else nn.Identity()
        self.proj_video = nn.Linear(hidden, hidden) if contrastive_heads else nn.Identity()

    def _weights(self, family: str, kernel: str, batch: int) -> torch.Tensor:
        mask = getattr(self, f"{family}_mask")
        if kernel == "gaussian":
            return getattr(self, f"{family}_gauss")
        if kernel == "uniform":
            return mask.to(self.audio_gauss.dtype)
        xi: torch.Tensor | float = 0.5
        if self.training:
            xi = torch.rand((batch, *mask.shape), device=mask.device)
        return hawkes_weights(getattr(self, f"{family}_term"), mask, self.graph_config.tau, xi)

    def adjacency(self, batch: int = 1) -> dict[str, torch.Tensor]:
        """Weighted (unnormalised) adjacencies ``audio`` (P_a, P_a), ``video`` (P_v, P_v),
        ``cross`` (P_a, P_v), each possibly with a leading batch dim (Hawkes in training)."""
        c = self.graph_config
        return {"audio": self._weights("audio", c.intra_kernel, batch),
                "video": self._weights("video", c.intra_kernel, batch),
                "cross": self._weights("cross", c.cross_kernel, batch)}

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> dict[str, torch.Tensor]:
        if audio.dim() != 3 or video.dim() != 3 or audio.shape[0] != video.shape[0]:
            raise THGCLError(f"THGN: audio {tuple(audio.shape)} and video {tuple(video.shape)} must be "
                             "(B, P_a, D_a) and (B, P_v, D_v)")
        if audio.shape[1] != self.num_audio or video.shape[1] != self.num_video:
            raise THGCLError(f"THGN was built for {self.num_audio} audio / {self.num_video} video "
                             f"nodes, got {audio.shape[1]} / {video.shape[1]}")
        b = audio.shape[0]
        adj = self.adjacency(b)
        a_hat = normalize_adjacency(adj["audio"])
        v_hat = normalize_adjacency(adj["video"])
        xa, xv = self.embed_audio(audio), self.embed_video(video)
        for gcn_a, gcn_v, gat in zip(self.gcn_a, self.gcn_v, self.gat_av):
            new_a = gcn_a(xa, a_hat) + gat(xa, xv, self.cross_mask, adj["cross"])
            new_v = gcn_v(xv, v_hat)
            xa, xv = self.dropout(F.relu(new_a)), self.dropout(F.relu(new_v))
        ga, gv = self.pool_audio(xa), self.pool_video(xv)
        return {"logits": self.classifier(ga), "graph_embedding": ga,
                "z_audio": self.proj_audio(ga), "z_video": self.proj_video(gv)}


class AudioOnlyMLP(nn.Module):
    """Non-graph baseline: mean over audio segments -> MLP. audio (B, P_a, D_a) -> logits (B, C)."""

    def __init__(self, num_classes: int, audio_dim: int = 128, hidden: int = 512,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * audio_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, num_classes))

    def forward(self, audio: torch.Tensor, video: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        x = torch.cat([audio.mean(1), audio.amax(1)], dim=-1)
        return {"logits": self.net(x)}


class LateFusionMLP(nn.Module):
    """Non-graph baseline: per-modality (mean, max) pooling -> MLP each -> concat -> linear."""

    def __init__(self, num_classes: int, audio_dim: int = 128, video_dim: int = 1024,
                 hidden: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        def branch(d: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(2 * d, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.audio, self.video = branch(audio_dim), branch(video_dim)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> dict[str, torch.Tensor]:
        a = self.audio(torch.cat([audio.mean(1), audio.amax(1)], -1))
        v = self.video(torch.cat([video.mean(1), video.amax(1)], -1))
        return {"logits": self.head(torch.cat([a, v], -1))}


# =============================================================================== losses
def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.5,
               gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017), mean over (B, C) elements.

    ``FL = alpha_t (1 - p_t)^gamma BCE(logit, y)``, ``alpha_t = alpha y + (1 - alpha)(1 - y)``;
    ``gamma = 0`` and ``alpha = 0.5`` give half the BCE. logits, target (B, C) -> scalar.
    """
    target = target.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return (alpha_t * (1 - p_t) ** gamma * ce).mean()


def nt_xent(z_a: torch.Tensor, z_v: torch.Tensor, temperature: float = 0.2,
            exclude_positive: bool = True) -> torch.Tensor:
    """Cross-modal NT-Xent of Eq. 4, summed over both directions (``L_CL = L_v->a + L_a->v``).

    z_a, z_v (B, d) graph embeddings of the same clips (row i = clip i). Cosine similarities
    divided by ``temperature`` (the paper's t, not printed; 0.2 here). As printed, the
    denominator sums over ``j != i`` (``exclude_positive=True``); ``False`` gives SimCLR's
    form with the positive in the denominator. Returns a scalar.
    """
    if z_a.shape != z_v.shape or z_a.dim() != 2:
        raise THGCLError(f"nt_xent: z_a {tuple(z_a.shape)} and z_v {tuple(z_v.shape)} must both be (B, d)")
    b = z_a.shape[0]
    if b < 2:
        raise THGCLError("nt_xent needs a batch of at least 2 clips")
    sim = F.normalize(z_a, dim=-1) @ F.normalize(z_v, dim=-1).T / temperature  # (B, B) a_i . v_j
    eye = torch.eye(b, dtype=torch.bool, device=sim.device)
    pos = sim.diagonal()

    def direction(s: torch.Tensor) -> torch.Tensor:
        den = s.masked_fill(eye, float("-inf")) if exclude_positive else s
        return (torch.logsumexp(den, dim=1) - pos).mean()

    return direction(sim) + direction(sim.T)


def make_batch_fn(loss: str = "focal+cl", cl_weight: float = 0.1, fl_weight: float = 1.0,
                  temperature: float = 0.2, alpha: float = 0.5, gamma: float = 2.0,
                  exclude_positive: bool = True) -> Callable[[nn.Module, Mapping[str, Any]], tuple]:
    """``batch_fn(model, batch) -> (loss, logits (B, C), target (B, C))`` for :func:`fit`.

    ``loss``: ``"bce"`` (the paper's cross-entropy, multi-label), ``"focal"`` or ``"focal+cl"``
    (Eq. 5: ``fl_weight * L_FL + cl_weight * L_CL``). Batches are dicts with ``audio``,
    ``video``, ``target``.
    """
    if loss not in ("bce", "focal", "focal+cl"):
        raise THGCLError(f"make_batch_fn: loss={loss!r} must be bce, focal or focal+cl")

    def batch_fn(model: nn.Module, batch: Mapping[str, Any]) -> tuple:
        out = model(batch["audio"], batch["video"])
        y = batch["target"]
        logits = out["logits"]
        if loss == "bce":
            value = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
        else:
            value = fl_weight * focal_loss(logits, y, alpha, gamma)
            if loss == "focal+cl" and model.training and logits.shape[0] > 1:
                value = value + cl_weight * nt_xent(out["z_audio"], out["z_video"], temperature,
                                                    exclude_positive)
        return value, logits, y

    return batch_fn


# =============================================================================== data
class AVFeatures(torch.utils.data.Dataset):
    """Per-clip node features: items ``{"audio" (P_a, D_a), "video" (P_v, D_v), "target" (C,),
    "index"}`` (float32 tensors)."""

    def __init__(self, audio: np.ndarray | torch.Tensor, video: np.ndarray | torch.Tensor,
                 target: np.ndarray | torch.Tensor) -> None:
        self.audio = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        self.video = torch.as_tensor(np.asarray(video, dtype=np.float32))
        self.target = torch.as_tensor(np.asarray(target, dtype=np.float32))
        n = len(self.audio)
        if len(self.video) != n or len(self.target) != n:
            raise THGCLError(f"AVFeatures: {n} audio, {len(self.video)} video, {len(self.target)} "
                             "target rows must match")

    def __len__(self) -> int:
        return len(self.audio)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"audio": self.audio[i], "video": self.video[i], "target": self.target[i], "index": i}

    def __getitems__(self, idx: Sequence[int]) -> dict[str, Any]:
        """Batched fetch (used by DataLoader): items of ``idx`` stacked by tensor indexing,
        ``audio`` (B, P_a, D_a), ``video`` (B, P_v, D_v), ``target`` (B, C), ``index`` (B,)."""
        i = torch.as_tensor(list(idx), dtype=torch.long)
        return {"audio": self.audio[i], "video": self.video[i], "target": self.target[i], "index": i}

    def subset(self, idx: np.ndarray | Sequence[int]) -> "AVFeatures":
        idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        return AVFeatures(self.audio[idx], self.video[idx], self.target[idx])


def av_collate(batch: Any) -> dict[str, Any]:
    """Collate for :class:`AVFeatures` loaders: a batch already stacked by ``__getitems__`` is
    returned as is (avoids per-item ``torch.stack``); a list of items is collated by default."""
    if isinstance(batch, dict):
        return batch
    return torch.utils.data.default_collate(batch)


def audio_segment_embeddings(waves: torch.Tensor, hop_s: float = 0.48, segment_s: float = 0.96,
                             sample_rate: int = 16000, encoder: nn.Module | None = None,
                             batch_size: int = 512) -> torch.Tensor:
    """128-d embeddings of 960 ms audio segments: waves (B, T) 16 kHz -> (B, P_a, 128).

    VGGish log-mel (64 bands, 10 ms hop; :class:`audiorepro.frontends.VGGishLogMel`), segments of
    ``segment_s`` (96 frames) every ``hop_s``, ``P_a = 1 + (F - 96) // hop``. With ``encoder`` (a
    VGGish backbone, e.g. from :func:`load_audio_encoder`) each (1, 96, 64) segment goes through
    it and its ``embedding`` output (N, 128) is returned: the paper's encoding. Without it the
    embedding is *fixed* log-mel statistics, [mean over time (64), std over time (64)] (no
    learned weights; kept for tests and as a cheap fallback).
    """
    from audiorepro.frontends import VGGishConfig, VGGishLogMel

    if sample_rate != 16000:
        raise THGCLError(f"audio_segment_embeddings: sample_rate={sample_rate}; VGGish needs 16000")
    device = waves.device if encoder is None else next(encoder.parameters()).device
    fe = VGGishLogMel(VGGishConfig()).to(device)
    frames = round(segment_s / 0.01)
    hop = max(1, round(hop_s / 0.01))
    with torch.no_grad():
        mel = fe.features(waves.float().to(device))  # (B, 64, F)
        if mel.shape[-1] < frames:
            raise THGCLError(f"audio_segment_embeddings: {mel.shape[-1]} frames < one segment ({frames})")
        seg = mel.unfold(-1, frames, hop)  # (B, 64, P_a, frames)
        if encoder is None:
            emb = torch.cat([seg.mean(-1), seg.std(-1)], dim=1).transpose(1, 2)  # (B, P_a, 128)
            return emb.contiguous()
        b, m, p, f = seg.shape
        ex = seg.permute(0, 2, 3, 1).reshape(b * p, 1, f, m)  # (B * P_a, 1, 96, 64)
        was = encoder.training
        encoder.eval()
        out = torch.cat([encoder(ex[s:s + batch_size])["embedding"] for s in range(0, len(ex), batch_size)])
        encoder.train(was)
        if out.shape[-1] != 128:
            raise THGCLError(f"audio_segment_embeddings: encoder gives {out.shape[-1]}-d embeddings, "
                             "expected 128 (a VGGish backbone)")
    return out.reshape(b, p, -1).float().cpu()


def load_audio_encoder(audio_encoder: str, world_seed: int | None = None,
                       device: str = "cpu") -> tuple[nn.Module | None, str]:
    """The audio-segment encoder named by ``audio_encoder`` and a key for feature caches.

    ``"stats"``: no network (fixed log-mel statistics). ``"vggish:smoke"`` / ``"vggish:book"``:
    the shared CPU-sized VGGish (``vggish_harritaylor_core``) pre-trained on the synthetic world
    by :func:`audiorepro.backbones.pretrain.pretrained_backbone` with that profile.
    ``"vggish:<path>"``: full-size VGGish built from a user checkpoint (harritaylor /
    torchvggish ``.pth``). With ``world_seed`` given, a pre-trained encoder whose pre-training
    world has the same seed raises :class:`THGCLError` (the evaluation world must not overlap).
    """
    if audio_encoder == "stats":
        return None, "stats"
    if not audio_encoder.startswith("vggish:"):
        raise THGCLError(f"audio_encoder={audio_encoder!r}: use stats, vggish:smoke, vggish:book "
                         "or vggish:<checkpoint path>")
    source = audio_encoder.split(":", 1)[1]
    if source in ("smoke", "book"):
        from audiorepro.backbones.pretrain import pretrained_backbone

        model, report = pretrained_backbone("vggish_harritaylor_core", profile=source,
                                            progress=False, record=False, device=device)
        cfg = getattr(model, "pretrain_config", {}) or {}
        pre_seed = cfg.get("world_seed")
        if world_seed is not None and pre_seed is not None and int(pre_seed) == int(world_seed):
            raise THGCLError(f"audio_encoder={audio_encoder!r} was pre-trained on the synthetic world "
                             f"of seed {pre_seed}; evaluate on another world seed (seed={world_seed})")
        return model.eval(), f"vggish-{source}-{Path(str(report.run_dir)).name}"
    from audiorepro.backbones import build_backbone

    path = Path(source)
    if not path.is_file():
        raise THGCLError(f"audio_encoder={audio_encoder!r}: no checkpoint file {path}")
    model = build_backbone("vggish_harritaylor_core", checkpoint=str(path)).to(device).eval()
    st = path.stat()
    return model, f"vggish-ckpt-{_key([str(path.resolve()), st.st_size, st.st_mtime])}"


def project_visual(visual: np.ndarray, out_dim: int = 1024, seed: int = 0) -> np.ndarray:
    """(N, P_v, D) pseudo-visual vectors -> (N, P_v, out_dim) float32 by a fixed Gaussian matrix
    (entries N(0, 1/D), seed ``seed``): a stand-in for 1024-d S3D features."""
    visual = np.asarray(visual, dtype=np.float32)
    if visual.ndim != 3:
        raise THGCLError(f"project_visual: visual has shape {visual.shape}, expected (N, P_v, D)")
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((visual.shape[2], out_dim)).astype(np.float32) / math.sqrt(visual.shape[2])
    return visual @ w


def _key(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def synthetic_av_features(world: Any, audio_hop_s: float = 0.48, visual: np.ndarray | None = None,
                          video_dim: int = 1024, projection_seed: int = 0, cache: bool = True,
                          audio_encoder: str = "stats") -> dict[str, Any]:
    """Node features of a synthetic world (:class:`audiorepro.data.synthetic.World`).

    Audio: :func:`audio_segment_embeddings` of every clip with the encoder named by
    ``audio_encoder`` (:func:`load_audio_encoder`; cached under
    ``cache/thgcl/<world>_hop<ms>_<encoder>.npy``). Video: ``visual`` (default ``world.visual``,
    or a :func:`~audiorepro.data.synthetic.visual_variant`) through :func:`project_visual`.
    Returns ``{"audio" (N, P_a, 128), "video" (N, P_v, video_dim), "target" (N, C), "split" (N,),
    "classes", "clip_id"}``.
    """
    from audiorepro import paths
    from audiorepro.data.audio import load_audio

    table = world.table
    n = len(table)
    encoder, enc_key = load_audio_encoder(audio_encoder, int(world.config["seed"]))
    cache_file = paths.cache_dir("thgcl") / f"{Path(world.root).name}_hop{round(audio_hop_s * 1000)}_{enc_key}.npy"
    audio = None
    if cache and cache_file.is_file():
        audio = np.load(cache_file)
        if audio.shape[0] != n:
            audio = None
    if audio is None:
        chunks = []
        for start in range(0, n, 32):
            waves = [load_audio(table.audio_path(i), sample_rate=16000)[0].reshape(-1)
                     for i in range(start, min(n, start + 32))]
            length = min(w.shape[-1] for w in waves)
            chunks.append(audio_segment_embeddings(torch.stack([w[:length] for w in waves]), audio_hop_s,
                                                   encoder=encoder).numpy())
        audio = np.concatenate(chunks).astype(np.float32)
        if cache:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(cache_file.name + f".{os.getpid()}.tmp.npy")
            np.save(tmp, audio)
            os.replace(tmp, cache_file)
    vis = world.visual if visual is None else visual
    if len(vis) != n:
        raise THGCLError(f"synthetic_av_features: visual has {len(vis)} rows for {n} clips")
    return {"audio": audio, "video": project_visual(np.asarray(vis), video_dim, projection_seed),
            "target": table.targets().astype(np.float32), "split": table.frame["split"].to_numpy(),
            "classes": list(table.classes), "clip_id": table.frame["clip_id"].tolist(),
            "audio_hop_s": float(audio_hop_s)}


def tmac_av_features(path: str | os.PathLike, seed: int = 1024,
                     ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> dict[str, Any]:
    """The real TMac feature file as node features with THGCL's stratified 0.7/0.1/0.2 split.

    Uses :func:`audiorepro.data.adapters.read_tmac_features`; split stratified by the clip's
    (first) class with ``seed`` (the THGCL config's 1024). Same keys as :func:`synthetic_av_features`;
    ``audio_hop_s`` assumes the P_a segments of 0.96 s tile the 10 s clip evenly (101 nodes:
    0.0904 s), which sets the time matching of the cross-modal edges.
    """
    from audiorepro.data.adapters import read_tmac_features

    feats = read_tmac_features(path)
    label = np.asarray(feats["label_index"])
    rng = np.random.default_rng(seed)
    split = np.empty(len(label), dtype=object)
    for c in np.unique(label):
        idx = rng.permutation(np.flatnonzero(label == c))
        n_tr = int(round(ratios[0] * len(idx)))
        n_va = int(round(ratios[1] * len(idx)))
        split[idx[:n_tr]] = "train"
        split[idx[n_tr:n_tr + n_va]] = "valid"
        split[idx[n_tr + n_va:]] = "test"
    return {"audio": feats["audio"], "video": feats["video"], "target": feats["target"],
            "split": split, "classes": feats["classes"],
            "clip_id": [str(i) for i in range(len(label))],
            "audio_hop_s": (10.0 - 0.96) / max(1, feats["audio"].shape[1] - 1)}


# =============================================================================== variants
#: name -> model kind, graph kernels (intra, cross), loss; TMac-style has no input maps and no
#: contrastive heads (its parameter count then matches TMac's, REFERENCE_FACTS: ~4.35 M).
VARIANTS: dict[str, dict[str, Any]] = {
    "THGCL": {"model": "thgn", "intra": "gaussian", "cross": "hawkes", "loss": "focal+cl"},
    "TMac-style": {"model": "thgn", "intra": "hawkes", "cross": "hawkes", "loss": "focal",
                   "embed": False, "heads": False},
    "both Hawkes": {"model": "thgn", "intra": "hawkes", "cross": "hawkes", "loss": "focal+cl"},
    "both Gaussian": {"model": "thgn", "intra": "gaussian", "cross": "gaussian", "loss": "focal+cl"},
    "THGCL (BCE)": {"model": "thgn", "intra": "gaussian", "cross": "hawkes", "loss": "bce"},
    "THGCL (FL)": {"model": "thgn", "intra": "gaussian", "cross": "hawkes", "loss": "focal"},
    "uniform weights": {"model": "thgn", "intra": "uniform", "cross": "uniform", "loss": "focal+cl"},
    "THGCL (TMac layout)": {"model": "thgn", "intra": "gaussian", "cross": "hawkes", "loss": "focal+cl",
                            "embed": False},
    "audio-only MLP": {"model": "audio_mlp", "loss": "focal"},
    "late-fusion concat MLP": {"model": "late_fusion", "loss": "focal"},
}


def build_variant(name: str, num_classes: int, num_audio: int, num_video: int, audio_dim: int = 128,
                  video_dim: int = 1024, hidden: int = 512, num_layers: int = 4,
                  embed_dim: int = 128, dropout: float = 0.1, graph: Mapping[str, Any] | None = None
                  ) -> nn.Module:
    """Model of a :data:`VARIANTS` entry; ``graph`` overrides :class:`GraphConfig` fields."""
    if name not in VARIANTS:
        raise THGCLError(f"unknown THGCL variant {name!r}; known: {list(VARIANTS)}")
    v = VARIANTS[name]
    if v["model"] == "audio_mlp":
        return AudioOnlyMLP(num_classes, audio_dim, hidden, dropout)
    if v["model"] == "late_fusion":
        return LateFusionMLP(num_classes, audio_dim, video_dim, hidden, dropout)
    cfg = GraphConfig(**{**dict(graph or {}), "intra_kernel": v["intra"], "cross_kernel": v["cross"]})
    return THGN(num_classes, num_audio, num_video, audio_dim, video_dim, cfg,
                embed_dim if v.get("embed", True) else None, hidden, num_layers, dropout,
                contrastive_heads=v.get("heads", True))


def evaluate_model(model: nn.Module, data: AVFeatures, batch_size: int = 256) -> dict[str, float]:
    """mAP / AUC / d' (:func:`audiorepro.metrics.tagging_metrics`) of ``model`` on ``data``."""
    from audiorepro.metrics import tagging_metrics

    p = next(model.parameters())
    was = model.training
    model.eval()
    outs = []
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            a = data.audio[s:s + batch_size].to(p.device)
            v = data.video[s:s + batch_size].to(p.device)
            outs.append(model(a, v)["logits"].float().cpu())
    model.train(was)
    return tagging_metrics(data.target.numpy(), torch.cat(outs).numpy())


def train_variant(name: str, features: Mapping[str, Any], model_kwargs: Mapping[str, Any] | None = None,
                  train_config: Mapping[str, Any] | None = None, loss_kwargs: Mapping[str, Any] | None = None,
                  run_root: str | os.PathLike | None = None, data_key: str = "",
                  device: str = "cpu") -> dict[str, Any]:
    """Train one variant on ``features`` (train / valid / test split) and score it on test.

    Inputs are standardised per dimension with the training split's mean / std. The graph's
    audio hop comes from ``features["audio_hop_s"]`` (``model_kwargs["graph"]`` overrides).

    ``run_root``: checkpoint folder root; the run folder name hashes variant, model, loss and
    training settings and ``data_key``, so notebooks sharing a run (Table 1 and Table 2 both
    need THGCL) train it once. Returns ``{"name", "model", "fit" (FitResult), "test" (metrics),
    "params" (trainable count)}``.
    """
    from audiorepro.training import fit
    from audiorepro.backbones.counting import count_parameters

    model_kwargs, loss_kwargs = dict(model_kwargs or {}), dict(loss_kwargs or {})
    cfg = {"seed": 0, "epochs": 20, "batch_size": 64, "lr": 0.005, "optimizer": "adam", "monitor": "mAP",
           "mode": "max", "patience": 5, "progress": False, **dict(train_config or {})}
    split = np.asarray(features["split"])
    ds = AVFeatures(features["audio"], features["video"], features["target"])
    train_idx = torch.as_tensor(np.flatnonzero(split == "train"))
    for name_ in ("audio", "video"):  # per-dimension standardisation with training statistics
        x = getattr(ds, name_)
        ref = x[train_idx].reshape(-1, x.shape[-1])
        setattr(ds, name_, (x - ref.mean(0)) / (ref.std(0) + 1e-5))
    parts = {s: ds.subset(np.flatnonzero(split == s)) for s in ("train", "valid", "test")}
    for s, part in parts.items():
        if len(part) == 0:
            raise THGCLError(f"train_variant: split {s!r} is empty")
    torch.manual_seed(int(cfg.get("seed", 0)))
    graph = {"audio_hop_s": float(features.get("audio_hop_s", GraphConfig.audio_hop_s)),
             **dict(model_kwargs.get("graph") or {})}
    model = build_variant(name, ds.target.shape[1], ds.audio.shape[1], ds.video.shape[1],
                          ds.audio.shape[2], ds.video.shape[2],
                          **{**model_kwargs, "graph": graph})
    batch_fn = make_batch_fn(VARIANTS[name]["loss"], **loss_kwargs)
    run_dir = None
    if run_root is not None:
        key = _key({"variant": name, "model": model_kwargs, "loss": loss_kwargs,
                    "train": {k: v for k, v in cfg.items() if k != "progress"}, "data": data_key})
        run_dir = Path(run_root) / f"{name.replace(' ', '_').replace('(', '').replace(')', '')}_{key}"
    result = fit(model, parts["train"], parts["valid"], config=cfg, task="tagging",
                 batch_fn=batch_fn, run_dir=run_dir, device=device, collate_fn=av_collate)
    return {"name": name, "model": result.model, "fit": result,
            "test": evaluate_model(result.model, parts["test"]),
            "params": count_parameters(result.model)["trainable"]}


# =============================================================================== notebooks
def world_features(n_clips: int, seed: int = 1, audio_hop_s: float = 0.48, audio_encoder: str = "stats",
                   **visual_params: Any) -> tuple[dict[str, Any], str]:
    """Features of the shared synthetic world (``default_world(n_clips, seed)``), optionally with
    the visual stream regenerated by :func:`~audiorepro.data.synthetic.visual_variant`
    (``av_offset_s``, ``visual_noise``, ...). Returns ``(features, data_key)``."""
    from audiorepro.data.synthetic import default_world, visual_variant

    world = default_world(n_clips, seed, progress=False)
    visual = visual_variant(world, **visual_params)[0] if visual_params else None
    key = f"{Path(world.root).name}_hop{round(audio_hop_s * 1000)}_{audio_encoder}_{_key(visual_params)}"
    return synthetic_av_features(world, audio_hop_s, visual=visual, audio_encoder=audio_encoder), key


def run_variants(names: Sequence[str], features: Mapping[str, Any], model_kwargs: Mapping[str, Any],
                 train_config: Mapping[str, Any], data_key: str, *, chapter: str = "thgcl",
                 table: str | None = None, paper_rows: Mapping[str, str] | None = None,
                 profile: str = "smoke", dataset: str = "synthetic", scale: str = "",
                 loss_kwargs: Mapping[str, Any] | None = None, extra_params: Mapping[str, Any] | None = None,
                 record_metrics: Sequence[str] = ("mAP", "AUC", "params")
                 ) -> tuple["Any", dict[str, dict[str, Any]]]:
    """Train ``names`` (cached per configuration under ``cache/thgcl/runs``), score them on the
    test split, and (if ``table``) record ``record_metrics`` (of ``mAP`` / ``AUC`` / ``params``)
    for each under the paper row ``paper_rows.get(name, name)``. Returns ``(summary DataFrame,
    results by name)``.
    """
    import pandas as pd

    from audiorepro import paths, results

    rows, out = [], {}
    for name in names:
        res = train_variant(name, features, model_kwargs, train_config, loss_kwargs,
                            run_root=paths.cache_dir("thgcl", "runs"), data_key=data_key)
        out[name] = res
        row = (paper_rows or {}).get(name, name)
        metrics = {"mAP": res["test"]["mAP"], "AUC": res["test"]["AUC"], "params": res["params"]}
        rows.append({"variant": name, "paper row": row, **metrics,
                     "epochs": res["fit"].epochs_run, "train s": round(res["fit"].duration_s, 1)})
        if table is not None:
            size = ", ".join(f"{k} {v}" for k, v in model_kwargs.items() if k != "graph")
            results.record(chapter, table, {k: metrics[k] for k in record_metrics},
                           {"paper_row": row, "variant": name, **dict(model_kwargs),
                            "train": dict(train_config), **dict(extra_params or {})},
                           dataset=dataset, scale=scale or "n/a", profile=profile,
                           model=f"{name} ({size})" if VARIANTS[name]["model"] == "thgn" else
                           f"{name} (hidden {model_kwargs.get('hidden', 512)})",
                           duration_s=res["fit"].duration_s)
    return pd.DataFrame(rows), out


def parameter_table(names: Sequence[str] = ("THGCL", "TMac-style", "THGCL (TMac layout)"),
                    num_classes: int = 33, num_audio: int = 101, num_video: int = 40,
                    **model_kwargs: Any) -> "Any":
    """Trainable parameters of :data:`VARIANTS` at the paper's sizes, per top-level module.

    Counting convention: every trainable weight and bias (``requires_grad``), no buffers (the
    graph masks and edge weights are fixed, not learned), classifier over ``num_classes``.
    Returns a DataFrame with one row per variant and one column per module group plus ``total``.
    """
    import pandas as pd

    rows = []
    for name in names:
        model = build_variant(name, num_classes, num_audio, num_video, **model_kwargs)
        row: dict[str, Any] = {"variant": name}
        for key, p in model.named_parameters():
            if p.requires_grad:
                row[key.split(".")[0]] = row.get(key.split(".")[0], 0) + p.numel()
        row["total"] = sum(v for k, v in row.items() if k != "variant")
        rows.append(row)
    cols = ["variant"] + [c for c in dict.fromkeys(k for r in rows for k in r) if c not in ("variant", "total")]
    df = pd.DataFrame(rows, columns=cols + ["total"]).fillna(0)
    return df.astype({c: "int64" for c in df.columns if c != "variant"})


def leader_share(fits: Mapping[str, Any], leader: str, metric: str = "mAP",
                 split: str = "valid", skip_first: int = 1) -> tuple[float, int]:
    """Share of evaluations at which run ``leader`` has the highest ``split`` ``metric`` among
    ``fits`` (name -> FitResult), over the epochs every run reached, ignoring the first
    ``skip_first`` evaluations. Returns ``(share in [0, 1], evaluations compared)``."""
    if leader not in fits:
        raise THGCLError(f"leader_share: leader={leader!r} is not one of {list(fits)}")
    curves = {}
    for name, fr in fits.items():
        h = fr.history
        h = h[(h.metric == metric) & (h.split == split)]
        curves[name] = h.groupby("epoch")["value"].last()
    common = sorted(set.intersection(*(set(c.index) for c in curves.values())))[skip_first:]
    if not common:
        raise THGCLError("leader_share: the runs share no evaluation after skip_first")
    wins = [all(curves[leader][e] >= curves[o][e] for o in curves if o != leader) for e in common]
    return float(np.mean(wins)), len(common)


def robustness_sweep(conditions: Mapping[str, Mapping[str, Any]], names: Sequence[str],
                     n_clips: int, seed: int, audio_encoder: str, model_kwargs: Mapping[str, Any],
                     train_config: Mapping[str, Any], *, audio_hop_s: float = 0.48,
                     visual_only_names: Sequence[str] = ("audio-only MLP",), profile: str = "smoke",
                     table: str | None = "robustness", chapter: str = "thgcl") -> "Any":
    """Train ``names`` on the synthetic world with each visual condition (label -> keyword
    arguments of :func:`~audiorepro.data.synthetic.visual_variant`, e.g. ``{"av_offset_s": 1.0}``)
    and score them on the test split. Variants in ``visual_only_names`` do not read the video
    (audio-only), so they are trained once, on the first condition, and repeated for the others.
    Each result is recorded (if ``table``) under the row ``"<variant> @ <condition label>"``.
    Returns a DataFrame ``condition, variant, mAP, AUC, epochs`` plus one column per visual
    parameter.
    """
    import pandas as pd

    from audiorepro import results

    rows, once = [], {}
    keys = sorted({k for c in conditions.values() for k in c})
    for label, visual_params in conditions.items():
        feats, key, dataset, scale = chapter_features(n_clips, seed, "", audio_hop_s, audio_encoder,
                                                      **dict(visual_params))
        for name in names:
            if name in visual_only_names and name in once:
                summary = once[name]
            else:
                summary, _ = run_variants([name], feats, model_kwargs, train_config, key)
                if name in visual_only_names:
                    once[name] = summary
            r = summary.iloc[0]
            row = {"condition": label, "variant": name, "mAP": float(r["mAP"]), "AUC": float(r["AUC"]),
                   "epochs": int(r["epochs"]), **{k: visual_params.get(k, np.nan) for k in keys}}
            rows.append(row)
            if table is not None:
                results.record(chapter, table, {"mAP": row["mAP"], "AUC": row["AUC"]},
                               {"paper_row": f"{name} @ {label}", "variant": name, "condition": label,
                                **{k: float(v) for k, v in dict(visual_params).items()},
                                **dict(model_kwargs), "train": dict(train_config)},
                               dataset=dataset, scale=f"{n_clips} clips (seed {seed})", profile=profile,
                               model=f"{name} (hidden {model_kwargs.get('hidden', 512)}, "
                                     f"{model_kwargs.get('num_layers', 4)} layers)")
    return pd.DataFrame(rows)


def draw_graph(graph: TemporalGraph, intra_kernel: str, cross_kernel: str, ax: Any = None,
               audio_values: np.ndarray | None = None, video_values: np.ndarray | None = None,
               tau: float = 1.0, title: str = "") -> Any:
    """Draw one clip's graph: audio nodes (top row) and video nodes (bottom row) at their start
    times, intra-modal edges as arcs and cross-modal edges as lines, coloured by edge weight
    (evaluation weights, ``xi = 0.5``). ``audio_values`` (P_a,) / ``video_values`` (P_v,) colour
    the nodes (e.g. a feature's energy). Returns the matplotlib axes."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.6))
    wa = edge_weights(graph, "audio", intra_kernel, tau).numpy()
    wv = edge_weights(graph, "video", intra_kernel, tau).numpy()
    wx = edge_weights(graph, "cross", cross_kernel, tau).numpy()
    ta, tv = graph.audio_time.numpy(), graph.video_time.numpy()
    ya, yv = 1.0, 0.0
    segs, vals = [], []
    for w, t, y, sign in ((wa, ta, ya, 1.0), (wv, tv, yv, -1.0)):
        for i, j in zip(*np.nonzero(w)):
            if j <= i:
                continue
            xs = np.linspace(t[i], t[j], 12)
            h = 0.08 + 0.03 * abs(t[j] - t[i])
            ys = y + sign * h * np.sin(np.linspace(0, np.pi, 12))
            segs.append(np.c_[xs, ys])
            vals.append(w[i, j])
    for k, j in zip(*np.nonzero(wx)):
        segs.append(np.array([[tv[j], yv], [ta[k], ya]]))
        vals.append(wx[k, j])
    lc = LineCollection(segs, array=np.asarray(vals), cmap="viridis", linewidths=0.8, alpha=0.8)
    ax.add_collection(lc)
    plt.colorbar(lc, ax=ax, label="edge weight", pad=0.01)
    ax.scatter(ta, np.full_like(ta, ya), c=audio_values if audio_values is not None else "tab:blue",
               cmap="magma", s=18, zorder=3, edgecolors="k", linewidths=0.3)
    ax.scatter(tv, np.full_like(tv, yv), c=video_values if video_values is not None else "tab:orange",
               cmap="magma", s=18, zorder=3, marker="s", edgecolors="k", linewidths=0.3)
    ax.set_yticks([yv, ya], ["video nodes", "audio nodes"])
    ax.set_xlabel("segment start time (s)")
    ax.set_xlim(-0.2, max(ta.max(), tv.max()) + 0.3)
    ax.set_ylim(-0.75, 1.75)
    ax.set_title(title or f"intra-modal {intra_kernel}, cross-modal {cross_kernel}")
    return ax


def plot_curves(fits: Mapping[str, Any], metrics: Sequence[tuple[str, str]] = (("loss", "train"), ("mAP", "valid")),
                x: str = "iteration") -> Any:
    """One panel per ``(metric, split)`` with one line per run (``FitResult.history``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.4))
    axes = np.atleast_1d(axes)
    for ax, (metric, split) in zip(axes, metrics):
        for label, fr in fits.items():
            h = fr.history
            h = h[(h.metric == metric) & (h.split == split)]
            ax.plot(h[x], h["value"], marker=".", label=label)
        ax.set_xlabel(x)
        ax.set_ylabel(f"{split} {metric}")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    return fig


def chapter_features(n_clips: int, seed: int = 1, tmac_file: str = "", audio_hop_s: float = 0.48,
                     audio_encoder: str = "stats", **visual_params: Any
                     ) -> tuple[dict[str, Any], str, str, str]:
    """Features for a chapter notebook: the real TMac file when ``tmac_file`` is given (paper
    profile), else the shared synthetic world encoded with ``audio_encoder``
    (:func:`load_audio_encoder`). Returns ``(features, data_key, dataset, scale)``."""
    if tmac_file:
        if visual_params:
            raise THGCLError("visual_params need the synthetic world; unset tmac_file")
        feats = tmac_av_features(tmac_file)
        return (feats, f"tmac_{Path(tmac_file).name}_{len(feats['split'])}",
                "AudioSet (TMac features)", f"{len(feats['split'])} clips")
    feats, key = world_features(n_clips, seed, audio_hop_s, audio_encoder, **visual_params)
    extra = "".join(f", {k} {v}" for k, v in visual_params.items())
    return (feats, key, f"synthetic world (audio {audio_encoder})",
            f"{n_clips} clips (seed {seed}{extra})")
