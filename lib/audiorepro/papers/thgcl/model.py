"""THGCL model: the temporal heterogeneous graph, the THGN layers and model, the losses.

Paper: Y. Chen, Y. Xiao, J. Huang, *Temporal Heterogeneous Graph Contrastive Learning for
Multimodal Acoustic Event Classification* (in Chinese; sections 2.1-2.3, Eqs. 1-5).
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
  weight. One learnable attention pooling (gate ``Linear(hidden, 1)``, softmax over nodes; the
  pooling of TMac [19]) aggregates the outputs: as the paper (section 2.3, "aggregate X_a^out
  and X_v^out to form the graph-level embedding X^G") the classifier ``Linear(hidden, C)``
  reads the pooling over *all* audio and video nodes (``readout="both"``), and the contrastive
  loss (Eq. 4) compares the graph embeddings of the two modalities, the pooling over the audio
  nodes and over the video nodes, with no projection head. Labelled ablations: ``readout=
  "audio"`` (the classifier reads the audio nodes only, as TMac's code) and
  ``contrastive_heads=True`` (one SimCLR-style ``Linear(hidden, hidden)`` head per modality
  before the loss; not in the paper).
* **Losses**: :func:`focal_loss` (sigmoid focal, alpha 0.5, gamma 2 as TMac), :func:`nt_xent`
  (Eq. 4, both directions), :func:`make_batch_fn` builds ``L = w_FL L_FL + w_CL L_CL`` (Eq. 5,
  paper weights 1.0 / 0.1) or plain BCE (the paper's "cross-entropy" curve, multi-label here).
* **Variants** (:data:`VARIANTS`, :func:`build_variant`) of the chapter's tables and
  :func:`parameter_table` (trainable parameters at the paper's sizes).

Node features live in :mod:`audiorepro.papers.thgcl.data`, training and recording in
:mod:`audiorepro.papers.thgcl.experiments`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "KERNELS", "READOUTS", "THGCLError", "GraphConfig", "TemporalGraph", "temporal_neighbours", "cross_neighbours",
    "build_graph", "gaussian_weights", "hawkes_weights", "edge_weights", "normalize_adjacency",
    "GCNLayer", "CrossGAT", "AttentionPool", "THGN", "AudioOnlyMLP", "VideoOnlyMLP", "LateFusionMLP",
    "focal_loss", "nt_xent", "make_batch_fn", "VARIANTS", "COUNTED_LAYOUTS", "build_variant", "parameter_table",
    "paper_layer_counts",
]

KERNELS = ("gaussian", "hawkes", "uniform")
#: what the classifier reads: all nodes of the graph (paper) or the audio nodes only (TMac)
READOUTS = ("both", "audio")


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
    ``logits`` (B, C), ``graph_embedding`` (B, hidden) (X^G, what the classifier reads),
    ``z_audio`` / ``z_video`` (B, hidden) the per-modality graph embeddings of the contrastive
    loss (through the projection heads when there are any).

    Args:
        num_classes: C. audio_dim / video_dim: input widths (paper 128 / 1024).
        num_audio / num_video: nodes per clip (P_a, P_v) - fixes the graph.
        graph: :class:`GraphConfig`. embed_dim: d of the input maps (paper 128; ``None``: no
            input maps, the first layer reads the raw features as in TMac).
        hidden: hidden width (paper 512). num_layers: paper 4. dropout: TMac 0.1.
        readout: ``"both"`` (paper: X^G pools the audio and the video nodes together) or
            ``"audio"`` (TMac: the audio nodes only).
        contrastive_heads: add two ``Linear(hidden, hidden)`` projection heads before the
            contrastive loss (not in the paper; a labelled ablation).
    """

    def __init__(self, num_classes: int, num_audio: int, num_video: int, audio_dim: int = 128,
                 video_dim: int = 1024, graph: GraphConfig = GraphConfig(), embed_dim: int | None = 128,
                 hidden: int = 512, num_layers: int = 4, dropout: float = 0.1,
                 contrastive_heads: bool = False, readout: str = "both") -> None:
        super().__init__()
        if num_layers < 1 or hidden < 1 or (embed_dim is not None and embed_dim < 1) or num_classes < 1:
            raise THGCLError("THGN: num_layers, hidden, embed_dim and num_classes must be >= 1")
        if readout not in READOUTS:
            raise THGCLError(f"THGN: readout={readout!r} must be one of {READOUTS}")
        self.readout = readout
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
        self.pool = AttentionPool(hidden)
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
        ga, gv = self.pool(xa), self.pool(xv)
        graph = self.pool(torch.cat([xa, xv], dim=1)) if self.readout == "both" else ga
        return {"logits": self.classifier(graph), "graph_embedding": graph,
                "z_audio": self.proj_audio(ga), "z_video": self.proj_video(gv)}


def _mean_max(x: torch.Tensor) -> torch.Tensor:
    """(B, n, d) nodes -> (B, 2 d): [mean, max] over the nodes."""
    return torch.cat([x.mean(1), x.amax(1)], dim=-1)


def _pooled_mlp(d_in: int, hidden: int, dropout: float, num_classes: int | None = None) -> nn.Sequential:
    """(B, 2 d_in) :func:`_mean_max` features -> two ReLU layers of ``hidden`` (-> (B, C) with
    ``num_classes``)."""
    layers: list[nn.Module] = [nn.Linear(2 * d_in, hidden), nn.ReLU(), nn.Dropout(dropout),
                               nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers, *([nn.Linear(hidden, num_classes)] if num_classes else []))


class AudioOnlyMLP(nn.Module):
    """Non-graph baseline: [mean, max] over audio segments -> MLP. audio (B, P_a, D_a) -> logits (B, C)."""

    def __init__(self, num_classes: int, audio_dim: int = 128, hidden: int = 512,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.net = _pooled_mlp(audio_dim, hidden, dropout, num_classes)

    def forward(self, audio: torch.Tensor, video: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": self.net(_mean_max(audio))}


class VideoOnlyMLP(nn.Module):
    """Non-graph baseline on the other modality: [mean, max] over video chunks -> MLP.
    video (B, P_v, D_v) -> logits (B, C); the audio input is ignored."""

    def __init__(self, num_classes: int, video_dim: int = 1024, hidden: int = 512,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.net = _pooled_mlp(video_dim, hidden, dropout, num_classes)

    def forward(self, audio: torch.Tensor | None, video: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.net(_mean_max(video))}


class LateFusionMLP(nn.Module):
    """Non-graph baseline: per-modality (mean, max) pooling -> MLP each -> concat -> linear."""

    def __init__(self, num_classes: int, audio_dim: int = 128, video_dim: int = 1024,
                 hidden: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.audio, self.video = _pooled_mlp(audio_dim, hidden, dropout), _pooled_mlp(video_dim, hidden, dropout)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> dict[str, torch.Tensor]:
        a, v = self.audio(_mean_max(audio)), self.video(_mean_max(video))
        return {"logits": self.head(torch.cat([a, v], -1))}


# =============================================================================== losses
def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.5,
               gamma: float = 2.0, reduction: str = "mean") -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017): ``reduction="mean"`` over the (B, C) elements
    (torchvision's ``sigmoid_focal_loss`` convention), ``"sum_classes"`` summed over the C
    classes and averaged over the B clips (C times larger).

    ``FL = alpha_t (1 - p_t)^gamma BCE(logit, y)``, ``alpha_t = alpha y + (1 - alpha)(1 - y)``;
    ``gamma = 0`` and ``alpha = 0.5`` give half the BCE. logits, target (B, C) -> scalar.
    """
    target = target.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    loss = alpha_t * (1 - p_t) ** gamma * ce
    if reduction == "sum_classes":
        return loss.sum(dim=-1).mean()
    if reduction != "mean":
        raise THGCLError(f"focal_loss: reduction={reduction!r} must be mean or sum_classes")
    return loss.mean()


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
                  exclude_positive: bool = True,
                  focal_reduction: str = "sum_classes") -> Callable[[nn.Module, Mapping[str, Any]], tuple]:
    """``batch_fn(model, batch) -> (loss, logits (B, C), target (B, C))`` for :func:`fit`.

    ``loss``: ``"bce"`` (the paper's cross-entropy, multi-label), ``"focal"`` or ``"focal+cl"``
    (Eq. 5: ``fl_weight * L_FL + cl_weight * L_CL``). ``focal_reduction`` (:func:`focal_loss`)
    sets the scale of L_FL against L_CL: the paper does not say how L_FL is reduced; TMac's code
    (the base model) uses a softmax focal loss over each clip's one class, averaged over clips,
    whose scale is one term per clip: the sum over classes per clip here (the default); the
    mean over clips and classes makes L_FL about C times smaller. Batches are dicts with
    ``audio``, ``video``, ``target``.
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
            value = fl_weight * focal_loss(logits, y, alpha, gamma, focal_reduction)
            if loss == "focal+cl" and model.training and logits.shape[0] > 1:
                value = value + cl_weight * nt_xent(out["z_audio"], out["z_video"], temperature,
                                                    exclude_positive)
        return value, logits, y

    return batch_fn


# =============================================================================== variants
#: name -> model kind, graph kernels (intra, cross), loss, and the layout switches ``embed``
#: (input maps to d; default on), ``heads`` (projection heads; default off), ``readout`` (what
#: the classifier pools; default ``"both"``). Defaults are the paper's model (section 2.3);
#: TMac-style has no input maps and reads the audio nodes only (its parameter count, ~4.35 M at
#: the paper's sizes, then matches the TMac architecture: 4 TMac layers on 128 / 1024-d inputs,
#: hidden 512, 33 classes). ``THGCL (audio readout, heads)`` is this chapter's first reading
#: (kept as a labelled ablation); ``THGCL (TMac layout + heads)`` is counted to explain the
#: printed 4.8 M; ``focal_reduction`` (default ``"sum_classes"``) is :func:`make_batch_fn`'s
#: scale of L_FL (``THGCL (FL averaged over classes)``: this chapter's first reading).
VARIANTS: dict[str, dict[str, Any]] = {
    "THGCL": {"model": "thgn", "intra": "gaussian", "cross": "hawkes", "loss": "focal+cl"},
    "TMac-style": {"model": "thgn", "intra": "hawkes", "cross": "hawkes", "loss": "focal",
                   "embed": False, "readout": "audio"},
    "both Hawkes": {"model": "thgn", "intra": "hawkes", "cross": "hawkes", "loss": "focal+cl"},
    "both Gaussian": {"model": "thgn", "intra": "gaussian", "cross": "gaussian", "loss": "focal+cl"},
    "THGCL (BCE)": {"model": "thgn", "intra": "gaussian", "cross": "hawkes", "loss": "bce"},
    "THGCL (FL)": {"model": "thgn", "intra": "gaussian", "cross": "hawkes", "loss": "focal"},
    "uniform weights": {"model": "thgn", "intra": "uniform", "cross": "uniform", "loss": "focal+cl"},
    "THGCL (audio readout, heads)": {"model": "thgn", "intra": "gaussian", "cross": "hawkes",
                                     "loss": "focal+cl", "readout": "audio", "heads": True},
    "THGCL (TMac layout + heads)": {"model": "thgn", "intra": "gaussian", "cross": "hawkes",
                                    "loss": "focal+cl", "embed": False, "heads": True},
    "THGCL (FL averaged over classes)": {"model": "thgn", "intra": "gaussian", "cross": "hawkes",
                                         "loss": "focal+cl", "focal_reduction": "mean"},
    "audio-only MLP": {"model": "audio_mlp", "loss": "focal"},
    "video-only MLP": {"model": "video_mlp", "loss": "focal"},
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
    if v["model"] == "video_mlp":
        return VideoOnlyMLP(num_classes, video_dim, hidden, dropout)
    if v["model"] == "late_fusion":
        return LateFusionMLP(num_classes, audio_dim, video_dim, hidden, dropout)
    cfg = GraphConfig(**{**dict(graph or {}), "intra_kernel": v["intra"], "cross_kernel": v["cross"]})
    return THGN(num_classes, num_audio, num_video, audio_dim, video_dim, cfg,
                embed_dim if v.get("embed", True) else None, hidden, num_layers, dropout,
                contrastive_heads=v.get("heads", False), readout=v.get("readout", "both"))


#: the layouts :func:`parameter_table` counts by default (the paper's model, TMac, and the two
#: layouts that explain the printed 4.8 M)
COUNTED_LAYOUTS = ("THGCL", "TMac-style", "THGCL (audio readout, heads)", "THGCL (TMac layout + heads)")


def parameter_table(names: Sequence[str] = COUNTED_LAYOUTS,
                    num_classes: int = 33, num_audio: int = 101, num_video: int = 40,
                    **model_kwargs: Any) -> pd.DataFrame:
    """Trainable parameters of :data:`VARIANTS` at the paper's sizes, per top-level module.

    Counting convention: every trainable weight and bias (``requires_grad``), no buffers (the
    graph masks and edge weights are fixed, not learned), classifier over ``num_classes``.
    Returns a DataFrame with one row per variant and one column per module group plus ``total``.
    """
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



def paper_layer_counts(num_classes: int = 33, audio_dim: int = 128, video_dim: int = 1024,
                       embed_dim: int | None = 128, hidden: int = 512, num_layers: int = 4,
                       heads: bool = False) -> pd.DataFrame:
    """The paper's own layer list (sections 2.1-2.3 and 3.1.2) counted by formula, one row per
    component: ``component``, ``formula``, ``count`` (trainable weights and biases).

    Input maps ``D -> d`` (weight + bias); per layer l (input width ``n_l``: d, then hidden):
    GNN-A and GNN-V ``n_l h + h`` each, GAT-AV (two maps without bias, two attention vectors,
    one bias) ``2 n_l h + 3 h``; the learnable pooling ``h + 1``; the classifier ``h C + C``;
    ``heads`` adds two ``h h + h`` projection heads (not in the paper). ``embed_dim=None`` is
    TMac's layout (no input maps; the first layer reads 128 / 1024-d). The sum equals the
    built model's count (a test checks it), so the table says where each parameter sits.
    """
    h = hidden
    rows: list[tuple[str, str, int]] = []
    if embed_dim is not None:
        rows += [("input map, audio", f"{audio_dim}*{embed_dim} + {embed_dim}", audio_dim * embed_dim + embed_dim),
                 ("input map, video", f"{video_dim}*{embed_dim} + {embed_dim}", video_dim * embed_dim + embed_dim)]
        n_a = n_v = embed_dim
    else:
        n_a, n_v = audio_dim, video_dim
    for layer in range(1, num_layers + 1):
        rows += [(f"layer {layer} GNN-A", f"{n_a}*{h} + {h}", n_a * h + h),
                 (f"layer {layer} GNN-V", f"{n_v}*{h} + {h}", n_v * h + h),
                 (f"layer {layer} GAT-AV", f"({n_v} + {n_a})*{h} + 3*{h}", (n_v + n_a) * h + 3 * h)]
        n_a = n_v = h
    rows += [("learnable pooling", f"{h} + 1", h + 1),
             ("classifier", f"{h}*{num_classes} + {num_classes}", h * num_classes + num_classes)]
    if heads:
        rows += [("projection heads (not in the paper)", f"2*({h}*{h} + {h})", 2 * (h * h + h))]
    out = pd.DataFrame(rows, columns=["component", "formula", "count"])
    return pd.concat([out, pd.DataFrame([{"component": "total", "formula": "",
                                          "count": int(out["count"].sum())}])], ignore_index=True)
