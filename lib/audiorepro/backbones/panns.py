"""PANNs CNN10 / CNN14 (Kong et al. 2020), state-dict compatible with the official checkpoints.

The official models (qiuqiangkong/audioset_tagging_cnn, ``pytorch/models.py``) contain their own
front end as modules with state-dict entries, reproduced here with the same names and shapes:

* ``spectrogram_extractor.stft.conv_real.weight`` / ``conv_imag.weight`` (n_fft/2+1, 1, n_fft):
  the STFT as a strided ``conv1d`` with periodic-Hann-windowed DFT kernels (torchlibrosa), frozen;
* ``logmel_extractor.melW`` (n_fft/2+1, mel_bins): Slaney-normalised Slaney-scale triangular mel
  filters (librosa's default), built with ``torchaudio.functional.melscale_fbanks``, frozen;
* ``bn0`` (BatchNorm over the mel bins), SpecAugmentation (training only, no parameters).

Pipeline (shapes for batch B, T samples, ``hop``): wave (B, T) -> reflect-pad n_fft/2 ->
power spectrogram (B, 1, T//hop + 1, n_fft/2+1) -> mel (B, 1, frames, 64) -> 10*log10(max(x, 1e-10))
-> bn0 over mel -> conv blocks (3x3 conv-BN-ReLU x2, 2x2 average pooling; CNN14's last block
does not pool) -> mean over mel, max+mean over time -> fc1 + ReLU = embedding -> fc_audioset.

Taps (multilayer-fusion numbering): ``1..6`` (CNN14) / ``1..4`` (CNN10) = conv-block outputs
(B, C_k, frames/2^k, 64/2^k) after pooling; also ``"logmel"`` (B, 1, frames, 64) before bn0 and
``"embedding"`` (B, D).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn

from .base import Backbone, load_checkpoint, scaled_width

#: name -> constructor arguments of the official configurations (models.py / README)
PANNS_CONFIGS: dict[str, dict[str, Any]] = {
    "panns_cnn14_32k": dict(arch="cnn14", sample_rate=32000, window_size=1024, hop_size=320,
                            mel_bins=64, fmin=50.0, fmax=14000.0),
    "panns_cnn14_16k": dict(arch="cnn14", sample_rate=16000, window_size=512, hop_size=160,
                            mel_bins=64, fmin=50.0, fmax=8000.0),
    "panns_cnn10_32k": dict(arch="cnn10", sample_rate=32000, window_size=1024, hop_size=320,
                            mel_bins=64, fmin=50.0, fmax=14000.0),
}
ARCH_WIDTHS = {"cnn14": [64, 128, 256, 512, 1024, 2048], "cnn10": [64, 128, 256, 512]}
AUDIOSET_CLASSES = 527


def init_layer(layer: nn.Module) -> None:
    """Xavier-uniform weights, zero bias (the official ``init_layer``)."""
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)


def init_bn(bn: nn.Module) -> None:
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)


# ---------------------------------------------------------------------- front end modules
def dft_kernels(n_fft: int, win_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Windowed DFT kernels ``(real, imag)``, each (n_fft//2+1, 1, n_fft) float32.

    ``real[k, 0, t] = w[t] cos(2 pi k t / n_fft)``, ``imag[k, 0, t] = -w[t] sin(2 pi k t / n_fft)``
    with ``w`` the periodic Hann window of ``win_length`` centred (zero-padded) in ``n_fft``.
    """
    win_length = win_length or n_fft
    window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    left = (n_fft - win_length) // 2
    window = F.pad(window, (left, n_fft - win_length - left))
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    t = torch.arange(n_fft, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * torch.remainder(k * t, n_fft) / n_fft
    real = (torch.cos(angle) * window).float()[:, None, :]
    imag = (-torch.sin(angle) * window).float()[:, None, :]
    return real, imag


class STFT(nn.Module):
    """STFT as two frozen ``conv1d`` (keys ``conv_real.weight``, ``conv_imag.weight``)."""

    def __init__(self, n_fft: int, hop_length: int, win_length: int | None = None,
                 center: bool = True, pad_mode: str = "reflect") -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.center, self.pad_mode = n_fft, hop_length, center, pad_mode
        n_bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, n_bins, n_fft, stride=hop_length, bias=False)
        self.conv_imag = nn.Conv1d(1, n_bins, n_fft, stride=hop_length, bias=False)
        real, imag = dft_kernels(n_fft, win_length)
        with torch.no_grad():
            self.conv_real.weight.copy_(real)
            self.conv_imag.weight.copy_(imag)
        self.conv_real.weight.requires_grad_(False)
        self.conv_imag.weight.requires_grad_(False)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) -> real, imag each (B, 1, frames, n_fft//2+1)."""
        x = wave[:, None, :]
        if self.center:
            x = F.pad(x, (self.n_fft // 2, self.n_fft // 2), mode=self.pad_mode)
        real = self.conv_real(x)[:, None].transpose(2, 3)
        imag = self.conv_imag(x)[:, None].transpose(2, 3)
        return real, imag


class Spectrogram(nn.Module):
    """Power spectrogram (B, T) -> (B, 1, frames, n_fft//2+1); holds ``stft``."""

    def __init__(self, n_fft: int, hop_length: int, win_length: int | None = None,
                 center: bool = True, pad_mode: str = "reflect", power: float = 2.0) -> None:
        super().__init__()
        self.power = power
        self.stft = STFT(n_fft, hop_length, win_length, center, pad_mode)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(wave)
        spec = real ** 2 + imag ** 2
        return spec if self.power == 2.0 else spec ** (self.power / 2.0)


def slaney_mel_matrix(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
                      ) -> torch.Tensor:
    """(n_fft//2+1, n_mels) Slaney-scale, Slaney-normalised filters (= ``librosa.filters.mel().T``)."""
    with torch.device("cpu"):  # computed on CPU even inside a meta/cuda device context
        return AF.melscale_fbanks(n_freqs=n_fft // 2 + 1, f_min=float(fmin), f_max=float(fmax),
                                  n_mels=n_mels, sample_rate=sample_rate, norm="slaney",
                                  mel_scale="slaney")


class LogmelFilterBank(nn.Module):
    """Power spectrogram (B, 1, frames, F) -> log-mel dB (B, 1, frames, n_mels); key ``melW``."""

    def __init__(self, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float,
                 ref: float = 1.0, amin: float = 1e-10, top_db: float | None = None) -> None:
        super().__init__()
        self.ref, self.amin, self.top_db = ref, amin, top_db
        self.melW = nn.Parameter(torch.empty(n_fft // 2 + 1, n_mels), requires_grad=False)
        with torch.no_grad():
            self.melW.copy_(slaney_mel_matrix(sr, n_fft, n_mels, fmin, fmax))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(spec, self.melW)
        log_spec = 10.0 * torch.log10(torch.clamp(mel, min=self.amin))
        log_spec = log_spec - 10.0 * math.log10(max(self.amin, self.ref))
        if self.top_db is not None:
            log_spec = torch.maximum(log_spec, log_spec.amax(dim=(-2, -1), keepdim=True) - self.top_db)
        return log_spec


class DropStripes(nn.Module):
    """Zero up to ``stripes_num`` random stripes (width < ``drop_width``) along ``dim`` (2 or 3)."""

    def __init__(self, dim: int, drop_width: int, stripes_num: int) -> None:
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"DropStripes dim must be 2 (time) or 3 (freq), got {dim}")
        self.dim, self.drop_width, self.stripes_num = dim, drop_width, stripes_num

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, F) -> same shape; identity in eval mode."""
        if not self.training or self.drop_width == 0:
            return x
        x = x.clone()
        total = x.shape[self.dim]
        for n in range(x.shape[0]):
            for _ in range(self.stripes_num):
                width = int(torch.randint(0, self.drop_width, (1,)))
                start = int(torch.randint(0, max(1, total - width), (1,)))
                if self.dim == 2:
                    x[n, :, start:start + width, :] = 0
                else:
                    x[n, :, :, start:start + width] = 0
        return x


class SpecAugmentation(nn.Module):
    """torchlibrosa's SpecAugmentation: time stripes then frequency stripes; no parameters."""

    def __init__(self, time_drop_width: int = 64, time_stripes_num: int = 2,
                 freq_drop_width: int = 8, freq_stripes_num: int = 2) -> None:
        super().__init__()
        self.time_dropper = DropStripes(2, time_drop_width, time_stripes_num)
        self.freq_dropper = DropStripes(3, freq_drop_width, freq_stripes_num)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.freq_dropper(self.time_dropper(x))


def do_mixup(x: torch.Tensor, mixup_lambda: torch.Tensor) -> torch.Tensor:
    """PANNs' mixup of even/odd pairs: (2N, ...) with lambda (2N,) -> (N, ...)."""
    return (x[0::2].transpose(0, -1) * mixup_lambda[0::2]
            + x[1::2].transpose(0, -1) * mixup_lambda[1::2]).transpose(0, -1)


class ConvBlock(nn.Module):
    """(3x3 conv, BN, ReLU) x 2 then pooling; keys conv1/conv2/bn1/bn2 as in PANNs."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        init_layer(self.conv1)
        init_layer(self.conv2)
        init_bn(self.bn1)
        init_bn(self.bn2)

    def forward(self, x: torch.Tensor, pool_size: tuple[int, int] = (2, 2),
                pool_type: str = "avg") -> torch.Tensor:
        """(B, C_in, T, F) -> (B, C_out, T / p0, F / p1)."""
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        if pool_type == "avg":
            return F.avg_pool2d(x, kernel_size=pool_size)
        if pool_type == "max":
            return F.max_pool2d(x, kernel_size=pool_size)
        if pool_type == "avg+max":
            return F.avg_pool2d(x, kernel_size=pool_size) + F.max_pool2d(x, kernel_size=pool_size)
        raise ValueError(f"pool_type must be avg/max/avg+max, got {pool_type!r}")


# ---------------------------------------------------------------------- the model
class PannsCNN(Backbone):
    """PANNs CNN14 / CNN10 with the official module names (see the module docstring).

    Args:
        arch: ``"cnn14"`` (6 blocks, 2048-d) or ``"cnn10"`` (4 blocks, 512-d).
        sample_rate, window_size, hop_size, mel_bins, fmin, fmax: front-end settings.
        classes_num: outputs of ``fc_audioset`` (527 for AudioSet).
        scale: channel-width multiplier (widths rounded to multiples of 8); 1.0 = official.
        spec_augment: apply SpecAugmentation in training mode (official: yes).
        conv_dropout, fc_dropout: dropout after every conv block / before ``fc1`` and on the
            embedding in training mode (official: 0.2 / 0.5); no parameters, so checkpoints
            load whatever the values.
    """

    input_kind = "wave"

    def __init__(self, arch: str = "cnn14", sample_rate: int = 32000, window_size: int = 1024,
                 hop_size: int = 320, mel_bins: int = 64, fmin: float = 50.0,
                 fmax: float = 14000.0, classes_num: int = AUDIOSET_CLASSES, scale: float = 1.0,
                 spec_augment: bool = True, name: str = "", conv_dropout: float = 0.2,
                 fc_dropout: float = 0.5) -> None:
        super().__init__()
        for what, p in (("conv_dropout", conv_dropout), ("fc_dropout", fc_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"PANNs {what}={p} must be in [0, 1)")
        self.conv_dropout, self.fc_dropout = float(conv_dropout), float(fc_dropout)
        if arch not in ARCH_WIDTHS:
            raise ValueError(f"PANNs arch must be one of {list(ARCH_WIDTHS)}, got {arch!r}")
        self.arch, self.name = arch, name or f"panns_{arch}"
        self.sample_rate, self.hop_size, self.window_size = int(sample_rate), hop_size, window_size
        self.scale, self.use_spec_augment = scale, spec_augment
        widths = [scaled_width(c, scale) for c in ARCH_WIDTHS[arch]]
        self.widths = widths
        self.spectrogram_extractor = Spectrogram(window_size, hop_size, window_size)
        self.logmel_extractor = LogmelFilterBank(sample_rate, window_size, mel_bins, fmin, fmax)
        self.spec_augmenter = SpecAugmentation(64, 2, 8, 2)
        self.bn0 = nn.BatchNorm2d(mel_bins)
        ins = [1] + widths[:-1]
        for i, (cin, cout) in enumerate(zip(ins, widths), start=1):
            setattr(self, f"conv_block{i}", ConvBlock(cin, cout))
        self.n_blocks = len(widths)
        self.fc1 = nn.Linear(widths[-1], widths[-1], bias=True)
        self.fc_audioset = nn.Linear(widths[-1], classes_num, bias=True)
        self.logmel_tap = nn.Identity()
        self.embedding_tap = nn.Identity()
        init_bn(self.bn0)
        init_layer(self.fc1)
        init_layer(self.fc_audioset)
        self.embed_dim = widths[-1]
        self.num_classes = classes_num
        self.tap_names = ["logmel", *range(1, self.n_blocks + 1), "embedding"]
        self.frontend = None

    # ------------------------------------------------------------------ interface
    def tap_modules(self) -> dict:
        taps: dict = {"logmel": self.logmel_tap, "embedding": self.embedding_tap}
        for i in range(1, self.n_blocks + 1):
            taps[i] = getattr(self, f"conv_block{i}")
        return taps

    def example_input(self, batch_size: int = 1, seconds: float = 10.0) -> torch.Tensor:
        dev = self.fc1.weight.device
        return 0.1 * torch.randn(batch_size, int(round(seconds * self.sample_rate)), device=dev)

    def reset_classifier(self, num_classes: int) -> None:
        dev = self.fc1.weight.device
        self.fc_audioset = nn.Linear(self.embed_dim, num_classes, bias=True).to(dev)
        init_layer(self.fc_audioset)
        self.num_classes = num_classes

    def logmel(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, T) waveform -> (B, 1, T // hop + 1, mel_bins) log-mel in dB (before bn0)."""
        if wave.dim() != 2:
            raise ValueError(f"{self.name}: waveform must be (batch, samples), got {tuple(wave.shape)}")
        return self.logmel_extractor(self.spectrogram_extractor(wave))

    def forward(self, x: torch.Tensor, mixup_lambda: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """x: (B, T) waveform at ``sample_rate``, or a (B, 1, frames, mel_bins) log-mel.

        Returns ``logits`` (B, classes) before the sigmoid, ``clipwise_output`` = sigmoid(logits)
        (the official output) and ``embedding`` (B, embed_dim) (dropout applied in training, as
        in the official code).
        """
        if x.dim() == 2:
            x = self.logmel(x)
        elif x.dim() != 4:
            raise ValueError(f"{self.name}: input must be (B, T) wave or (B, 1, frames, mel), "
                             f"got {tuple(x.shape)}")
        x = self.logmel_tap(x)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        if self.training and self.use_spec_augment:
            x = self.spec_augmenter(x)
        if self.training and mixup_lambda is not None:
            x = do_mixup(x, mixup_lambda)
        for i in range(1, self.n_blocks + 1):
            pool = (1, 1) if (self.arch == "cnn14" and i == 6) else (2, 2)
            x = getattr(self, f"conv_block{i}")(x, pool_size=pool, pool_type="avg")
            x = F.dropout(x, p=self.conv_dropout, training=self.training)
        x = torch.mean(x, dim=3)
        x = torch.max(x, dim=2).values + torch.mean(x, dim=2)
        x = F.dropout(x, p=self.fc_dropout, training=self.training)
        x = self.embedding_tap(F.relu_(self.fc1(x)))
        embedding = F.dropout(x, p=self.fc_dropout, training=self.training)
        logits = self.fc_audioset(x)
        return {"logits": logits, "clipwise_output": torch.sigmoid(logits), "embedding": embedding}


def build_panns(name: str, scale: float = 1.0, num_classes: int | None = None,
                checkpoint: Any = None, **kw: Any) -> PannsCNN:
    """Build a registered PANNs configuration (``PANNS_CONFIGS``).

    ``checkpoint`` (an official ``.pth`` with its ``{'model': ...}`` wrapper, or a state dict) is
    loaded strictly into the 527-class model; a different ``num_classes`` then replaces
    ``fc_audioset`` (transfer learning, as PANNs' ``Transfer_Cnn14``). Extra ``kw`` go to
    :class:`PannsCNN` (e.g. ``spec_augment=False``, ``fmax=...``).
    """
    if name not in PANNS_CONFIGS:
        raise KeyError(f"unknown PANNs configuration {name!r}; known: {sorted(PANNS_CONFIGS)}")
    cfg = {**PANNS_CONFIGS[name], **kw}
    if checkpoint is not None:
        model = PannsCNN(**cfg, classes_num=AUDIOSET_CLASSES, scale=1.0, name=name)
        load_checkpoint(model, checkpoint, strict=True)
        if num_classes is not None and num_classes != AUDIOSET_CLASSES:
            model.reset_classifier(num_classes)
        return model
    return PannsCNN(**cfg, classes_num=num_classes or AUDIOSET_CLASSES, scale=scale, name=name)
