"""Official-format checkpoint files, written from random weights, to prove the loading path.

The published weights cannot be downloaded here. A user who has them passes the downloaded file
to the same code (``build_backbone(name, checkpoint=path)``, or the paper package's loader for the
ImageNet ViG file). This module writes files that look exactly like the downloads — file name,
container (PANNs' ``{'model': ...}`` wrapper, AST's DataParallel ``module.`` prefix, plain state
dicts for PaSST, the VGGish ports and the ViG ``.pth.tar``) and every key with its official shape
and dtype — taken from the reference state-dict manifests (made from the official code, not from
this project's models), filled with seeded random numbers. Loading them strictly through the user's
code path therefore checks key names, shapes and containers against the official code.

Each entry of :data:`OFFICIAL_CHECKPOINTS` names where the real file comes from.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..fileio import atomic_save_torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "int64": torch.int64}


@dataclass(frozen=True)
class OfficialCheckpoint:
    """One released checkpoint file.

    ``container``: ``state_dict`` (the file is the state dict), ``panns`` (``{'iteration': int,
    'model': state_dict}``), ``dataparallel`` (state dict whose keys carry ``module.``).
    ``keys``: ``all`` or ``core`` (the VGGish core file: every key but ``pproc.*``).
    """

    name: str
    file_name: str
    manifest: str
    container: str
    source: str
    keys: str = "all"


OFFICIAL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {c.name: c for c in (
    OfficialCheckpoint("panns_cnn14_32k", "Cnn14_mAP=0.431.pth", "panns_cnn14_32k", "panns",
                       "PANNs release (Zenodo record 3987831), qiuqiangkong/audioset_tagging_cnn"),
    OfficialCheckpoint("panns_cnn14_16k", "Cnn14_16k_mAP=0.438.pth", "panns_cnn14_16k", "panns",
                       "PANNs release (Zenodo record 3987831), qiuqiangkong/audioset_tagging_cnn"),
    OfficialCheckpoint("panns_cnn10_32k", "Cnn10_mAP=0.380.pth", "panns_cnn10_32k", "panns",
                       "PANNs release (Zenodo record 3987831), qiuqiangkong/audioset_tagging_cnn"),
    OfficialCheckpoint("vggish_harritaylor_core", "vggish-10086976.pth", "vggish_harritaylor_core",
                       "state_dict", "harritaylor/torchvggish release v0.1", keys="core"),
    OfficialCheckpoint("vggish_tcvrick", "pytorch_vggish.pth", "vggish_tcvrick", "state_dict",
                       "tcvrick/audioset-vggish-tensorflow-to-pytorch"),
    OfficialCheckpoint("ast_base384_f10_t10_527", "audioset_10_10_0.4593.pth",
                       "ast_base384_f10_t10_527", "dataparallel",
                       "YuanGongND/ast README (AudioSet, stride 10, ensemble member 0.4593)"),
    OfficialCheckpoint("passt_s_swa_p16_s10_128_998_527", "passt-s-f128-p16-s10-ap.476-swa.pt",
                       "passt_s_swa_p16_s10_128_998_527", "state_dict",
                       "kkoutini/PaSST release v0.0.1-audioset"),
    OfficialCheckpoint("passt_s_p16_s16_128_1000_527", "passt-s-f128-p16-s16-ap.468.pt",
                       "passt_s_p16_s16_128_1000_527", "state_dict",
                       "kkoutini/PaSST release v0.0.1-audioset"),
    OfficialCheckpoint("passt_s_kd_p16_s10_128_998_527", "passt-s-kd-ap.486.pt",
                       "passt_s_kd_p16_s10_128_998_527", "state_dict",
                       "kkoutini/PaSST release v.0.0.9 (PaSST-S, knowledge-distilled, AudioSet "
                       "mAP 48.6: the retrieval paper's PaSST-S)"),
    OfficialCheckpoint("passt_s_20sec_p16_s10_128_2000_527",
                       "passt-s-f128-20sec-p16-s10-ap.474-swa.pt",
                       "passt_s_20sec_p16_s10_128_2000_527", "state_dict",
                       "kkoutini/PaSST release v0.0.5 (PaSST-S20: 20 s time positions)"),
    OfficialCheckpoint("passt_l_kd_p16_s10_128_998_527", "passt-l-kd-ap.47.pt",
                       "passt_l_kd_p16_s10_128_998_527", "state_dict",
                       "kkoutini/PaSST release v.0.0.10 (PaSST-L, hear21passt's "
                       "passt_l_kd_p16_128_ap47)"),
    OfficialCheckpoint("vig_pyramid_s_224_1000", "pvig_s_82.1.pth.tar", "vig_pyramid_s_224_1000",
                       "state_dict", "huawei-noah/Efficient-AI-Backbones release pyramid-vig"),
    OfficialCheckpoint("vig_pyramid_m_224_1000", "pvig_m_83.1.pth.tar", "vig_pyramid_m_224_1000",
                       "state_dict", "huawei-noah/Efficient-AI-Backbones release pyramid-vig"),
    OfficialCheckpoint("efficientnet_b2_torchvision", "efficientnet_b2_rwightman-c35c1473.pth",
                       "efficientnet_b2_torchvision", "state_dict",
                       "torchvision EfficientNet_B2_Weights.IMAGENET1K_V1 (PSLA's ImageNet "
                       "initialisation, the ATGNN chapter's PSLA baseline)"),
)}


def _manifest(name: str) -> dict[str, Any]:
    from .pretrain import reference_manifest_dir      # lazy: pretrain imports the training loop

    folder = reference_manifest_dir()
    if folder is None or not (folder / f"{name}.json").is_file():
        raise FileNotFoundError(f"reference manifest {name}.json not found (looked in "
                                f"{folder or 'tests/fixtures/reference_state_dicts'})")
    return json.loads((folder / f"{name}.json").read_text(encoding="utf8"))


def official_state_dict(name: str, seed: int = 0) -> "dict[str, torch.Tensor]":
    """The state dict of the official file ``name`` with seeded random values (normal(0, 0.02)
    for weights; BatchNorm running means 0 and variances 1, so a forward pass is finite; zeros for
    integer buffers), in the manifest's key order."""
    spec = OFFICIAL_CHECKPOINTS[name]
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, shape, dtype in _manifest(spec.manifest)["state_dict"]:
        if spec.keys == "core" and key.startswith("pproc."):
            continue
        dt = DTYPES[dtype]
        if key.endswith("running_var"):          # BatchNorm statistics a trained model could have
            out[key] = torch.ones(shape, dtype=dt)
        elif key.endswith("running_mean") or not dt.is_floating_point:
            out[key] = torch.zeros(shape, dtype=dt)
        else:
            out[key] = (torch.randn(shape, generator=gen) * 0.02).to(dt)
    return out


def write_official_checkpoint(name: str, folder: str | Path, seed: int = 0) -> Path:
    """Write ``folder/<official file name>`` in the official container; returns the path.
    An existing file is kept (written once per folder)."""
    spec = OFFICIAL_CHECKPOINTS.get(name)
    if spec is None:
        raise KeyError(f"no official checkpoint named {name!r}; known: {sorted(OFFICIAL_CHECKPOINTS)}")
    path = Path(folder) / spec.file_name
    if path.is_file():
        return path
    sd = official_state_dict(name, seed)
    if spec.container == "panns":
        obj: Any = {"iteration": 0, "model": sd}
    elif spec.container == "dataparallel":
        obj = {f"module.{k}": v for k, v in sd.items()}
    elif spec.container == "state_dict":
        obj = sd
    else:
        raise ValueError(f"{name}: unknown container {spec.container!r}")
    return atomic_save_torch(obj, path)


def write_vggish_pca_params(folder: str | Path, seed: int = 0) -> Path:
    """The harritaylor port's second file, ``vggish_pca_params-970ea276.pth``:
    ``{'pca_eigen_vectors': (128, 128), 'pca_means': (128,)}``."""
    path = Path(folder) / "vggish_pca_params-970ea276.pth"
    if not path.is_file():
        gen = torch.Generator().manual_seed(seed)
        atomic_save_torch({"pca_eigen_vectors": torch.linalg.qr(torch.randn(128, 128, generator=gen))[0],
                           "pca_means": torch.randn(128, generator=gen)}, path)
    return path
