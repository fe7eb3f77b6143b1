"""The baseline families of the bag-of-codewords paper's Table I, for 1 s chunks.

Table I compares the bag-of-codewords model with FSD50K's CNN baselines (CRNN, VGG-like,
ResNet-18, DenseNet-121) and a baseline Transformer. Their published numbers come from other
papers' recipes; this module builds the same *families* so that the book can train them here on
the same chunks, by the same loop, with the same budget as the bag-of-codewords head:

======================== =====================================================================
row                      network (``width`` scales every channel / embedding size)
======================== =====================================================================
``CRNN``                 3 conv blocks (64, 128, 128 ch; BN, ReLU, 2 x 2 max pool), the mel
                         axis averaged, a bidirectional GRU (64 units each way), mean over time
``VGG-like``             torchvision's VGG layer builder (``vgg.make_layers``, batch norm) with
                         the VGG-11 layout up to 512 channels, global average pooling
``ResNet-18``            torchvision's ``ResNet(BasicBlock, [2, 2, 2, 2])``, its stages rebuilt
                         with ``ResNet._make_layer`` at 64 / 128 / 256 / 512 x width
``DenseNet-121``         torchvision's ``DenseNet`` with the 121 layout (6, 12, 24, 16), growth
                         rate 32 x width, 64 x width initial features
``Transformer``          16 x 16 spectrogram patches, learned positions, 4 pre-norm encoder
                         layers (``nn.TransformerEncoder``, 192 x width, 4 heads), mean of tokens
======================== =====================================================================

Every network takes the bag-of-codewords paper's own front end (``bow_96``: 96-band log-mel,
100 frames per second) through :meth:`prepare`, standardises each mel band with a BatchNorm
(as PANNs' ``bn0``) and, in its first layer, takes one input channel. Shapes: waves (B, T) at
16 kHz -> :meth:`prepare` -> (B, 96, frames) -> ``forward`` -> ``{"logits": (B, K),
"embedding": (B, E)}``. The widths of the full models (``width=1``) are the usual ones of these
families, not those of the papers whose numbers Table I prints.
"""
from __future__ import annotations

from typing import Callable

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from audiorepro.frontends import make_frontend

__all__ = ["TABLE1_FAMILIES", "FamilyNet", "build_family"]


def _w(n: int, width: float, floor: int = 4) -> int:
    """``n`` channels scaled by ``width``, at least ``floor``."""
    return max(floor, int(round(n * width)))


def _crnn(width: float) -> tuple[nn.Module, int]:
    chans = [_w(c, width) for c in (64, 128, 128)]
    layers, c_in = [], 1
    for c in chans:
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        c_in = c
    hidden = _w(64, width)

    class CRNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(*layers)
            self.gru = nn.GRU(c_in, hidden, batch_first=True, bidirectional=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:   # (B, 1, M, T) -> (B, 2 hidden)
            h = self.conv(x).mean(dim=2).transpose(1, 2)         # (B, T', C)
            return self.gru(h)[0].mean(dim=1)
    return CRNN(), 2 * hidden


def _vgg_like(width: float) -> tuple[nn.Module, int]:
    cfg = [_w(64, width), "M", _w(128, width), "M", _w(256, width), _w(256, width), "M",
           _w(512, width), _w(512, width), "M", _w(512, width), _w(512, width)]
    features = torchvision.models.vgg.make_layers(cfg, batch_norm=True)
    features[0] = nn.Conv2d(1, cfg[0], kernel_size=3, padding=1)   # one input channel
    return nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), cfg[-1]


def _resnet18(width: float) -> tuple[nn.Module, int]:
    net = torchvision.models.resnet.ResNet(BasicBlock, [2, 2, 2, 2])
    net.inplanes = _w(64, width)
    net.conv1 = nn.Conv2d(1, net.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(net.inplanes)
    net.layer1 = net._make_layer(BasicBlock, _w(64, width), 2)
    net.layer2 = net._make_layer(BasicBlock, _w(128, width), 2, stride=2)
    net.layer3 = net._make_layer(BasicBlock, _w(256, width), 2, stride=2)
    net.layer4 = net._make_layer(BasicBlock, _w(512, width), 2, stride=2)
    net.fc = nn.Identity()
    return net, _w(512, width)


def _densenet121(width: float) -> tuple[nn.Module, int]:
    init = _w(64, width)
    net = torchvision.models.DenseNet(growth_rate=_w(32, width), block_config=(6, 12, 24, 16),
                                      num_init_features=init)
    net.features.conv0 = nn.Conv2d(1, init, kernel_size=7, stride=2, padding=3, bias=False)
    dim = net.classifier.in_features
    net.classifier = nn.Identity()
    return net, dim


def _transformer(width: float, frames: int = 100, mels: int = 96, patch: int = 16) -> tuple[nn.Module, int]:
    dim = _w(192, width, floor=16) // 4 * 4      # divisible by the 4 heads

    class PatchTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
            self.pos = nn.Parameter(torch.zeros(1, (mels // patch) * (frames // patch), dim))
            nn.init.trunc_normal_(self.pos, std=0.02)
            layer = nn.TransformerEncoderLayer(dim, 4, 4 * dim, dropout=0.1, batch_first=True,
                                               norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:   # (B, 1, M, T) -> (B, dim)
            tokens = self.patch(x).flatten(2).transpose(1, 2)    # (B, N, dim)
            if tokens.shape[1] != self.pos.shape[1]:
                raise ValueError(f"PatchTransformer: {tokens.shape[1]} patches, built for "
                                 f"{self.pos.shape[1]} ({mels} mel x {frames} frames)")
            return self.norm(self.encoder(tokens + self.pos)).mean(dim=1)
    return PatchTransformer(), dim


#: Table I row -> builder of its body (width -> (module taking (B, 1, 96, 100), embedding size))
TABLE1_FAMILIES: dict[str, Callable[[float], tuple[nn.Module, int]]] = {
    "CRNN": _crnn, "VGG-like": _vgg_like, "ResNet-18": _resnet18, "DenseNet-121": _densenet121,
    "Transformer": _transformer,
}


class FamilyNet(nn.Module):
    """One Table I family on bow_96 log-mel chunks: per-band BatchNorm, the family's body, a
    linear classifier. ``input_kind = "logmel"``: :meth:`prepare` makes the input from waves."""

    input_kind = "logmel"
    sample_rate = 16000

    def __init__(self, family: str, num_classes: int, width: float = 1.0) -> None:
        super().__init__()
        if family not in TABLE1_FAMILIES:
            raise KeyError(f"unknown Table I family {family!r}; known: {list(TABLE1_FAMILIES)}")
        self.name = family
        self.frontend = make_frontend("bow_96")
        self.bn0 = nn.BatchNorm1d(self.frontend.n_mels)
        self.body, self.embed_dim = TABLE1_FAMILIES[family](float(width))
        self.classifier = nn.Linear(self.embed_dim, num_classes)

    @torch.no_grad()
    def prepare(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, T) 16 kHz waves -> (B, 96, frames) log-mel (``bow_96``)."""
        return self.frontend(wave)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(self.bn0(x).unsqueeze(1))
        return {"embedding": h, "logits": self.classifier(h)}


def build_family(family: str, num_classes: int, width: float = 1.0) -> FamilyNet:
    """:class:`FamilyNet` of Table I row ``family`` (a key of :data:`TABLE1_FAMILIES`)."""
    return FamilyNet(family, num_classes, width)
