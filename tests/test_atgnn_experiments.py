"""ATGNN chapter experiments: the recipe's batch function and label attention (synthetic tensors)."""
from __future__ import annotations

import torch

from audiorepro.atgnn import RecipeConfig, label_attention, make_batch_fn
from audiorepro.models.atgnn import build_atgnn


def test_recipe_masks_scale_and_train_config():
    r = RecipeConfig()
    bfn = make_batch_fn(r, (64, 256))
    assert bfn.masks == (24, 48)                    # 48 * 64 / 128, 192 * 256 / 1024
    cfg = r.train_config()
    assert cfg["lr"] == 5e-4 and cfg["warmup_iters"] == 1000 and cfg["step_gamma"] == 0.5
    assert cfg["step_start_epoch"] == 10 and cfg["step_every_epochs"] == 5 and cfg["batch_size"] == 24


def test_batch_fn_is_plain_bce_in_eval_mode():
    torch.set_num_threads(1)
    m = build_atgnn("pyr-tiny", num_classes=5, input_size=(32, 64)).eval()
    x, y = torch.randn(3, 64, 32), (torch.rand(3, 5) > 0.5).float()
    loss, out, tgt = make_batch_fn(RecipeConfig(), (32, 64))(m, (x, y))
    assert torch.allclose(loss, torch.nn.functional.binary_cross_entropy_with_logits(m(x), y), atol=1e-6)
    assert torch.equal(tgt, y)


def test_label_attention_counts_k_neighbours_per_label():
    torch.set_num_threads(1)
    m = build_atgnn("pyr-tiny", num_classes=6, input_size=(32, 64))
    att = label_attention(m, torch.randn(2, 64, 32))
    assert att.shape == (2, 6, 8, 16)                # stage-1 grid of a 32 x 64 input
    assert torch.all(att.sum((2, 3)) == 9)          # k_plg = 9 distinct patch neighbours
    assert m.training                               # mode restored
