"""Official-format checkpoint files (random weights, official file names, containers and keys from
the reference manifests) load strictly through the code a user runs with the real download."""
from __future__ import annotations

import shutil

import pytest
import torch

from audiorepro.backbones import build_backbone
from audiorepro.backbones.official import (OFFICIAL_CHECKPOINTS, official_state_dict,
                                           write_official_checkpoint, write_vggish_pca_params)

BACKBONES = [n for n in OFFICIAL_CHECKPOINTS if not n.startswith(("vig_", "efficientnet_"))]   # ViG, EfficientNet: the ATGNN loaders


@pytest.fixture
def folder(tmp_path):
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)          # full-size files: do not keep them


def test_containers_and_file_names(folder):
    p = write_official_checkpoint("panns_cnn10_32k", folder)
    assert p.name == "Cnn10_mAP=0.380.pth"
    obj = torch.load(p, weights_only=True)
    assert set(obj) == {"iteration", "model"} and "conv_block1.conv1.weight" in obj["model"]
    ast_sd = official_state_dict("ast_base384_f10_t10_527")
    assert tuple(ast_sd["v.pos_embed"].shape) == (1, 1214, 768)       # 12 x 101 patches + 2 tokens
    core = official_state_dict("vggish_harritaylor_core")
    assert not any(k.startswith("pproc.") for k in core) and len(core) == 18
    # seeded: the same seed gives the same file contents, another seed other values
    a, b = official_state_dict("panns_cnn10_32k", 0), official_state_dict("panns_cnn10_32k", 1)
    assert torch.equal(a["fc1.weight"], official_state_dict("panns_cnn10_32k", 0)["fc1.weight"])
    assert not torch.equal(a["fc1.weight"], b["fc1.weight"])


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKBONES)
def test_official_file_loads_strictly_through_build_backbone(name, folder):
    path = write_official_checkpoint(name, folder, seed=3)
    backbone, kw = name, {}
    if name == "vggish_harritaylor_core":      # the core file plus the PCA file, as released
        backbone, kw = "vggish_harritaylor", {"pca_checkpoint": write_vggish_pca_params(folder)}
    model = build_backbone(backbone, checkpoint=path, **kw)
    want = official_state_dict(name, seed=3)
    own = model.state_dict()
    for key in list(want)[:3] + list(want)[-3:]:         # values arrived under the official names
        mine = key if key in own else key.replace("module.", "")
        assert torch.equal(own[mine].float(), want[key].float()), key
    del model


def test_a_model_loaded_from_an_official_file_gives_finite_outputs(folder):
    path = write_official_checkpoint("panns_cnn10_32k", folder)
    model = build_backbone("panns_cnn10_32k", checkpoint=path).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 32000))
    logits = out if torch.is_tensor(out) else next(iter(out.values())) if isinstance(out, dict) else out[0]
    assert torch.isfinite(logits).all()
