"""VGGish (Hershey et al. 2017), state-dict compatible with the two common PyTorch ports.

* ``vggish_harritaylor``: harritaylor/torchvggish with ``postprocess=True`` - keys ``features.*``,
  ``embeddings.*`` and the frozen PCA parameters ``pproc.pca_eigen_vectors`` (128, 128) /
  ``pproc.pca_means`` (128, 1). Its released weights come in two files: ``vggish-10086976.pth``
  (exactly the ``_core`` keys) and ``vggish_pca_params-970ea276.pth`` (pass it as
  ``pca_checkpoint``; ``pca_means`` is stored as (128,) and reshaped here).
* ``vggish_harritaylor_core``: the same without ``pproc`` (the file ``vggish-10086976.pth``).
* ``vggish_tcvrick``: tcvrick/audioset-vggish-tensorflow-to-pytorch - same shapes, the fully
  connected stack is named ``fc.*`` instead of ``embeddings.*``.

Both ports flatten the last conv output in NHWC order (as the TensorFlow original) before the
fully connected layers and end with a ReLU. Input: (N, 1, 96, 64) log-mel examples (96 frames of
10 ms x 64 mel bins, from ``audiorepro.frontends.vggish_examples``).

Taps (numbering of the multilayer-fusion paper, Table I): ReLU outputs 2 (N, 64, 96, 64),
5 (N, 128, 48, 32), 8 and 10 (N, 256, 24, 16), 13 and 15 (N, 512, 12, 8), 18 and 20 (N, 4096),
22 (N, 128) (the embedding). Layer ``n <= 16`` is ``features[n-1]``; ``17..22`` is
``embeddings[n-17]`` (``fc`` for tcvrick).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

import torch
from torch import nn

from .base import Backbone, CheckpointError, LazyFrontend, load_checkpoint, read_state_dict, scaled_width

VGGISH_CONFIGS: dict[str, dict[str, Any]] = {
    "vggish_harritaylor": dict(fc_name="embeddings", postprocess=True),
    "vggish_harritaylor_core": dict(fc_name="embeddings", postprocess=False),
    "vggish_tcvrick": dict(fc_name="fc", postprocess=False),
}
CONV_PLAN = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M"]
EMBEDDING_SIZE = 128
QUANTIZE_MIN_VAL, QUANTIZE_MAX_VAL = -2.0, 2.0
EXAMPLE_FRAMES, EXAMPLE_BANDS, EXAMPLE_SECONDS = 96, 64, 0.96


class Postprocessor(nn.Module):
    """PCA (whitening) + 8-bit quantisation of AudioSet's released embeddings.

    Parameters (frozen): ``pca_eigen_vectors`` (128, 128), ``pca_means`` (128, 1). A freshly
    built model has identity / zero PCA (the official code leaves them uninitialised).
    """

    def __init__(self) -> None:
        super().__init__()
        self.pca_eigen_vectors = nn.Parameter(torch.eye(EMBEDDING_SIZE), requires_grad=False)
        self.pca_means = nn.Parameter(torch.zeros(EMBEDDING_SIZE, 1), requires_grad=False)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """(N, 128) raw embeddings -> (N, 128) values in {0, ..., 255} (float)."""
        pca = torch.mm(self.pca_eigen_vectors, emb.T - self.pca_means).T
        clipped = torch.clamp(pca, QUANTIZE_MIN_VAL, QUANTIZE_MAX_VAL)
        return torch.round((clipped - QUANTIZE_MIN_VAL)
                           * (255.0 / (QUANTIZE_MAX_VAL - QUANTIZE_MIN_VAL)))


class VGGish(Backbone):
    """VGGish with the official key names.

    Args:
        fc_name: attribute name of the fully connected stack (``embeddings`` or ``fc``).
        postprocess: add the ``pproc`` PCA/quantisation module (harritaylor full model).
        scale: channel / hidden-width multiplier (rounded to multiples of 8); the 128-d
            embedding keeps its size.
    """

    input_kind = "examples"
    sample_rate = 16000
    embed_dim = EMBEDDING_SIZE
    tap_names = [2, 5, 8, 10, 13, 15, 18, 20, 22]

    def __init__(self, fc_name: str = "embeddings", postprocess: bool = False, scale: float = 1.0,
                 name: str = "vggish") -> None:
        super().__init__()
        if fc_name not in ("embeddings", "fc"):
            raise ValueError(f"fc_name must be 'embeddings' or 'fc', got {fc_name!r}")
        self.name, self.fc_name, self.scale = name, fc_name, scale
        layers: list[nn.Module] = []
        cin = 1
        for v in CONV_PLAN:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                cout = scaled_width(int(v), scale)
                layers += [nn.Conv2d(cin, cout, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = cout
        self.features = nn.Sequential(*layers)
        hidden = scaled_width(4096, scale)
        self.add_module(fc_name, nn.Sequential(
            nn.Linear(cin * 4 * 6, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, EMBEDDING_SIZE), nn.ReLU(True)))
        self.pproc = Postprocessor() if postprocess else None
        self.head: nn.Linear | None = None
        self.frontend = LazyFrontend("audiorepro.frontends:vggish_examples")

    @property
    def fc_stack(self) -> nn.Sequential:
        return getattr(self, self.fc_name)

    def tap_modules(self) -> dict:
        return {n: (self.features[n - 1] if n <= 16 else self.fc_stack[n - 17])
                for n in self.tap_names}

    def example_input(self, batch_size: int = 1, seconds: float = 10.0) -> torch.Tensor:
        n = batch_size * max(1, int(seconds / EXAMPLE_SECONDS))
        dev = self.features[0].weight.device
        return torch.randn(n, 1, EXAMPLE_FRAMES, EXAMPLE_BANDS, device=dev)

    def reset_classifier(self, num_classes: int) -> None:
        """Add (or replace) a linear ``head`` on the 128-d embedding -> ``logits``."""
        self.head = nn.Linear(EMBEDDING_SIZE, num_classes).to(self.features[0].weight.device)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (N, 1, 96, 64) log-mel examples.

        Returns ``embedding`` (N, 128) (after the last ReLU, the ``_core`` output), plus
        ``postprocessed`` (N, 128) when the model has ``pproc`` and ``logits`` when it has a head.
        """
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, EXAMPLE_FRAMES, EXAMPLE_BANDS):
            raise ValueError(f"{self.name}: input must be (N, 1, 96, 64) log-mel examples, "
                             f"got {tuple(x.shape)}")
        x = self.features(x)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # NHWC flatten, as TF
        emb = self.fc_stack(x)
        out = {"embedding": emb}
        if self.pproc is not None:
            out["postprocessed"] = self.pproc(emb)
        if self.head is not None:
            out["logits"] = self.head(emb)
        return out


def read_pca_params(path_or_dict: Any) -> "OrderedDict[str, torch.Tensor]":
    """harritaylor's PCA file -> ``{'pproc.pca_eigen_vectors': (128,128), 'pproc.pca_means': (128,1)}``."""
    if isinstance(path_or_dict, Mapping):
        raw, source = dict(path_or_dict), "<PCA dict>"
    else:
        source = str(path_or_dict)
        try:
            raw = torch.load(path_or_dict, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise CheckpointError(
                f"cannot read the VGGish PCA file {source} safely ({exc}); load it yourself with "
                f"torch.load(..., weights_only=False) and pass the dict as pca_checkpoint") from exc
    out = OrderedDict()
    for key, shape in (("pca_eigen_vectors", (128, 128)), ("pca_means", (128, 1))):
        cand = [k for k in raw if k.split(".")[-1] == key]
        if not cand:
            raise CheckpointError(f"VGGish PCA file {source} lacks {key!r}; keys: {list(raw)}")
        t = torch.as_tensor(raw[cand[0]], dtype=torch.float32).reshape(shape)
        out[f"pproc.{key}"] = t
    return out


def build_vggish(name: str, scale: float = 1.0, num_classes: int | None = None,
                 checkpoint: Any = None, pca_checkpoint: Any = None, **kw: Any) -> VGGish:
    """Build ``vggish_harritaylor`` / ``vggish_harritaylor_core`` / ``vggish_tcvrick``.

    ``checkpoint``: official weights (path or state dict) loaded strictly. For
    ``vggish_harritaylor`` the core file lacks ``pproc.*``: give ``pca_checkpoint`` (the PCA file)
    too. ``embeddings.*`` / ``fc.*`` keys are renamed to the model's port, so a harritaylor file
    loads into ``vggish_tcvrick`` and vice versa. ``num_classes`` adds a linear head on the
    embedding (``logits``).
    """
    if name not in VGGISH_CONFIGS:
        raise KeyError(f"unknown VGGish configuration {name!r}; known: {sorted(VGGISH_CONFIGS)}")
    cfg = {**VGGISH_CONFIGS[name], **kw}
    model = VGGish(**cfg, scale=1.0 if checkpoint is not None else scale, name=name)
    # the two ports differ only in the FC-stack name: accept either file for either model
    key_map = {"embeddings.": "fc."} if model.fc_name == "fc" else {"fc.": "embeddings."}
    if checkpoint is not None:
        sd, source = read_state_dict(checkpoint)
        if model.pproc is not None and not any(k.startswith("pproc.") for k in sd):
            if pca_checkpoint is None:
                raise CheckpointError(
                    f"{name}: checkpoint {source} has no pproc.* PCA parameters; pass "
                    f"pca_checkpoint=<vggish_pca_params-970ea276.pth> or build "
                    f"'vggish_harritaylor_core' instead")
            sd = OrderedDict(list(sd.items()) + list(read_pca_params(pca_checkpoint).items()))
            try:
                load_checkpoint(model, sd, strict=True, key_map=key_map)
            except CheckpointError as exc:
                raise CheckpointError(f"{name}: {source} + PCA file {pca_checkpoint}: {exc}") from exc
        else:
            load_checkpoint(model, checkpoint, strict=True, key_map=key_map)
    if num_classes is not None:
        model.reset_classifier(num_classes)
    return model
