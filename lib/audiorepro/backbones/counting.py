"""Parameter and FLOP counts with stated conventions (shared by all chapters).

Conventions (the same as ``reference_state_dicts/SUMMARY.md``):

* ``trainable`` - elements of parameters with ``requires_grad=True``;
* ``all`` - elements of every ``nn.Parameter``, frozen ones included (PANNs' STFT kernels and
  mel matrix, VGGish's PCA matrix);
* ``buffers`` - elements of the persistent buffers that appear in ``state_dict()`` (BatchNorm
  running statistics and the int64 ``num_batches_tracked`` counters); never counted as parameters.

FLOPs: :func:`count_flops` uses ``torch.utils.flop_counter.FlopCounterMode``, which counts
**2 flops per multiply-accumulate** for convolutions, matmuls and attention, and nothing for
elementwise ops, pooling or normalisation. We divide by 2 and report **GMACs**, the unit of the
reference manifests (fvcore counts one fused multiply-add as one "flop"; fvcore additionally counts
batch/layer norm, which FlopCounterMode does not, so expect ours to be lower by that share).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> dict[str, int]:
    """``{"trainable", "all", "buffers"}`` element counts (see the module docstring)."""
    params = dict(model.named_parameters())
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    total = sum(p.numel() for p in params.values())
    buffers = sum(v.numel() for k, v in model.state_dict().items() if k not in params)
    return {"trainable": int(trainable), "all": int(total), "buffers": int(buffers)}


def count_flops(model: nn.Module, example_input: torch.Tensor | tuple | dict,
                by_operator: bool = False) -> float | tuple[float, dict[str, float]]:
    """Multiply-accumulates (in G) of one forward pass of ``model`` on ``example_input``.

    Runs under ``torch.no_grad()`` in the model's current mode (call ``model.eval()`` first to
    match the manifests). The model and input may live on the ``meta`` device, which counts
    without computing (useful for full-size models on a small machine).

    Args:
        model: any module.
        example_input: a tensor, a tuple of positional args, or a dict of keyword args.
        by_operator: also return ``{aten op name: GMACs}``.
    Returns:
        GMACs (= FlopCounterMode flops / 2 / 1e9), optionally with the per-operator split.
    """
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        if isinstance(example_input, dict):
            model(**example_input)
        elif isinstance(example_input, tuple):
            model(*example_input)
        else:
            model(example_input)
    gmacs = counter.get_total_flops() / 2 / 1e9
    if not by_operator:
        return gmacs
    split: dict[str, float] = {}
    for op, n in counter.get_flop_counts().get("Global", {}).items():
        name = str(op).removeprefix("aten.").split(".")[0]   # 'aten.convolution' -> 'convolution'
        split[name] = split.get(name, 0.0) + n / 2 / 1e9
    return gmacs, split


def describe_counts(model: nn.Module, example_input: Any | None = None) -> str:
    """One-line summary ``trainable / all / buffers [/ GMACs]`` for logs and notebooks."""
    c = count_parameters(model)
    s = f"trainable {c['trainable']:,} | all {c['all']:,} | buffers {c['buffers']:,}"
    if example_input is not None:
        s += f" | {count_flops(model, example_input):.3f} GMACs"
    return s
