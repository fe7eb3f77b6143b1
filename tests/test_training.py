"""Training loop, schedules, sampler and seeding on tiny synthetic tensors (CPU, < 20 s)."""
from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from audiorepro import metrics as M
from audiorepro.training import (BalancedSampler, FitResult, TrainConfig, balanced_sampler,
                                 build_optimizer_and_scheduler, class_balanced_weights, fit,
                                 get_rng_state, lr_at, move_to_device, multilabel_sample_weights,
                                 pick_device, plot_history, predict, seed_everything, set_rng_state)

CPU = torch.device("cpu")


# ------------------------------------------------------------------ fixtures
class DictSet(Dataset):
    """Items {"x": (D,), "target": ..., "clip_id": str, "index": int}; a random crop offset
    from its own generator (like ClipDataset) to exercise generator state in checkpoints."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, seed: int = 0, jitter: float = 0.0):
        self.x, self.y, self.jitter = x, y, jitter
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        x = self.x[i]
        if self.jitter:
            x = x + self.jitter * torch.randn(x.shape, generator=self.generator)
        return {"x": x, "target": self.y[i], "clip_id": f"clip{i}", "index": i}


def tagging_data(n: int = 96, d: int = 6, c: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, c, generator=g)
    y = (x @ w > 0).float()
    return x, y


def classification_data(n: int = 90, d: int = 4, c: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % c
    centers = 2.0 * torch.randn(c, d, generator=g)
    x = centers[y] + 0.7 * torch.randn(n, d, generator=g)
    return x, y


def mlp(d: int, c: int, seed: int = 0, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, c))


QUIET = {"progress": False}


# ------------------------------------------------------------------ schedules
def test_step_schedule_with_warmup_hand_values():
    # lr 5e-4, warm-up 4 iterations, 3 iterations / epoch, halve every 2 epochs from epoch 2:
    # i=0 -> 5e-4 * 1/4 ; i=2 -> 5e-4 * 3/4 ; i=3 (epoch 1) -> 5e-4 ; i=6 (epoch 2) -> 2.5e-4 ;
    # i=9 (epoch 3) -> 2.5e-4 ; i=12 (epoch 4) -> 1.25e-4 ; i=18 (epoch 6) -> 6.25e-5
    cfg = {"lr": 5e-4, "warmup_iters": 4, "schedule": "step", "step_start_epoch": 2,
           "step_every_epochs": 2, "step_gamma": 0.5, "epochs": 10}
    expect = {0: 1.25e-4, 2: 3.75e-4, 3: 5e-4, 5: 5e-4, 6: 2.5e-4, 9: 2.5e-4, 12: 1.25e-4, 18: 6.25e-5}
    for i, v in expect.items():
        assert lr_at(cfg, i, 3) == pytest.approx(v, rel=1e-12), i
    # the real optimiser sees the same LRs when the scheduler is stepped once per iteration
    p = nn.Parameter(torch.zeros(1))
    opt, sched = build_optimizer_and_scheduler([p], cfg, iters_per_epoch=3)
    seen = []
    for _ in range(19):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    for i, v in expect.items():
        assert seen[i] == pytest.approx(v, rel=1e-12), i


def test_cosine_schedule_passt_style_hand_values():
    # 2e-5 -> 1e-7, one warm-up epoch of 10 iterations, 31 iterations in all:
    # i=0 -> 2e-6 ; i=9 -> 2e-5 ; i=10 -> 2e-5 (p=0) ; span = 31-1-10 = 20 ;
    # i=20 -> p=0.5 -> 1e-7 + (2e-5 - 1e-7) * 0.5 = 1.005e-5 ; i=30 -> p=1 -> 1e-7
    cfg = {"lr": 2e-5, "min_lr": 1e-7, "schedule": "cosine", "warmup_epochs": 1,
           "epochs": None, "max_iters": 31, "optimizer": "adamw", "weight_decay": 1e-4}
    for i, v in {0: 2e-6, 9: 2e-5, 10: 2e-5, 20: 1.005e-5, 30: 1e-7}.items():
        assert lr_at(cfg, i, 10) == pytest.approx(v, rel=1e-9), i
    lrs = [lr_at(cfg, i, 10) for i in range(10, 31)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # monotone decay after warm-up


def test_exponential_and_constant_schedules():
    # exponential: lr * gamma^epoch -> epoch 2 (i = 4, 2 it/epoch) = 0.1 * 0.5^2 = 0.025
    assert lr_at({"lr": 0.1, "schedule": "exponential", "exp_gamma": 0.5}, 4, 2) == pytest.approx(0.025)
    assert lr_at({"lr": 0.1}, 100, 2) == pytest.approx(0.1)


def test_optimizers_and_config_errors():
    p = [nn.Parameter(torch.zeros(2))]
    opt, _ = build_optimizer_and_scheduler(p, {"optimizer": "sgd", "lr": 0.1, "momentum": 0.8,
                                               "weight_decay": 1e-3}, 5)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]["momentum"] == 0.8 and opt.param_groups[0]["weight_decay"] == 1e-3
    opt, _ = build_optimizer_and_scheduler(p, {"optimizer": "adamw", "lr": 0.1, "weight_decay": 0.05}, 5)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 0.05
    with pytest.raises(KeyError, match="warmup_iter"):
        TrainConfig.from_dict({"warmup_iter": 10})
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig.from_dict({"optimizer": "lamb"})
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig.from_dict({"epochs": None, "max_iters": None})


# ------------------------------------------------------------------ sampler / seeding
def test_sample_weights_hand_computed():
    # label frequencies f = [4, 1]: w = [1/4, 1/4, 1/4, 1/4 + 1/1]; clip 4 has no label -> min = 1/4
    y = np.array([[1, 0], [1, 0], [1, 0], [1, 1], [0, 0]])
    assert multilabel_sample_weights(y).tolist() == pytest.approx([0.25, 0.25, 0.25, 1.25, 0.25])
    # single label [0, 0, 0, 1]: w = [1/3, 1/3, 1/3, 1]
    assert class_balanced_weights(np.array([0, 0, 0, 1])).tolist() == pytest.approx([1 / 3] * 3 + [1])
    with pytest.raises(ValueError, match="integers"):
        class_balanced_weights(np.array([0.0, 1.0]))


@pytest.mark.parametrize("multilabel", [True, False])
def test_balanced_sampler_draws_rare_class_as_often(multilabel):
    # 900 clips of class 0, 100 of class 1: uniform sampling gives class 1 a 10 % share,
    # balanced sampling ~50 %.
    labels = np.array([0] * 900 + [1] * 100)
    targets = np.eye(2)[labels] if multilabel else labels
    s = balanced_sampler(targets, num_samples=20000, seed=3)
    draws = np.array(list(s))
    share_rare = np.mean(labels[draws] == 1)
    assert abs(share_rare - 0.5) < 0.03
    # deterministic per (seed, epoch); another epoch gives another sequence
    assert list(balanced_sampler(targets, 20000, seed=3)) == draws.tolist()
    s.set_epoch(1)
    assert list(s) != draws.tolist()


def test_balanced_sampler_shards_over_ranks():
    w = np.ones(50)
    full = BalancedSampler(w, num_samples=21, seed=1).epoch_indices().tolist()
    r0 = list(BalancedSampler(w, 21, seed=1, rank=0, world_size=2))
    r1 = list(BalancedSampler(w, 21, seed=1, rank=1, world_size=2))
    assert r0 == full[0::2] and r1 == full[1::2] and len(r0) == 11 and len(r1) == 10


def test_seed_everything_and_rng_state_roundtrip():
    seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(7)
    state = get_rng_state()
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == b
    # survives a torch.save / torch.load(weights_only=True) round trip
    import io
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    set_rng_state(torch.load(buf, weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == b


# ------------------------------------------------------------------ loop
def test_fit_tagging_learns_and_returns_tidy_history():
    x, y = tagging_data()
    res = fit(mlp(6, 3), TensorDataset(x[:64], y[:64]), TensorDataset(x[64:], y[64:]),
              nn.BCEWithLogitsLoss(), {"epochs": 6, "batch_size": 16, "lr": 0.02,
                                       "monitor": "mAP", "mode": "max", **QUIET}, task="tagging")
    assert isinstance(res, FitResult)
    h = res.history
    assert list(h.columns) == ["epoch", "iteration", "split", "metric", "value"]
    assert set(h.metric) >= {"loss", "lr", "mAP", "AUC", "d_prime"}
    train_loss = res.curve("loss", "train")["value"].to_numpy()
    assert train_loss[-1] < train_loss[0]
    assert res.curve("mAP")["iteration"].tolist() == [4, 8, 12, 16, 20, 24]  # 64/16 = 4 it/epoch
    assert res.epochs_run == 6 and res.iterations == 24 and res.duration_s > 0
    best = res.curve("mAP")["value"].max()
    assert res.best_metrics["mAP"] == best
    # the returned model carries the best weights: its validation mAP is the best one
    s, t = predict(res.model, DataLoader(TensorDataset(x[64:], y[64:]), batch_size=7))
    assert s.shape == (32, 3) and t.shape == (32, 3)
    assert M.mean_average_precision(t, s) == pytest.approx(best, abs=1e-6)


def test_fit_classification_with_dict_batches_leaves_lists():
    x, y = classification_data()
    seen_types = []

    def batch_fn(model, batch):
        seen_types.append((batch["x"].device.type, type(batch["clip_id"]).__name__))
        out = model(batch["x"])
        return nn.functional.cross_entropy(out, batch["target"]), out, batch["target"]

    res = fit(mlp(4, 3), DictSet(x[:60], y[:60]), DictSet(x[60:], y[60:]), None,
              {"epochs": 8, "batch_size": 12, "lr": 0.02, "monitor": "accuracy", "mode": "max", **QUIET},
              batch_fn=batch_fn, task="classification")
    assert set(seen_types) == {("cpu", "list")}
    acc = res.curve("accuracy")["value"].to_numpy()
    assert acc.max() > 0.8 and acc.max() > acc[0] - 1e-9
    assert "macro_F1" in res.best_metrics


def test_early_stopping_restores_best_weights():
    x, y = classification_data(n=120)
    # validation labels are permuted, so validation loss rises once the model fits the training set
    y_bad = (y[60:] + 1) % 3
    valid = TensorDataset(x[60:], y_bad)
    res = fit(mlp(4, 3, seed=1), TensorDataset(x[:60], y[:60]), valid, nn.CrossEntropyLoss(),
              {"epochs": 50, "batch_size": 20, "lr": 0.05, "monitor": "loss", "mode": "min",
               "patience": 3, **QUIET}, task="classification")
    vloss = res.curve("loss")
    assert res.stopped_early and res.epochs_run < 50
    best_epoch = int(vloss.loc[vloss["value"].idxmin(), "epoch"])
    assert res.epochs_run == best_epoch + 3
    assert res.best_metrics["epoch"] == best_epoch
    s, t = predict(res.model, DataLoader(valid, batch_size=32))
    restored = nn.functional.cross_entropy(torch.from_numpy(s), torch.from_numpy(t)).item()
    assert restored == pytest.approx(vloss["value"].min(), rel=1e-5)


def test_max_iters_eval_every_iters_and_mixup_hook():
    x, y = tagging_data()
    calls = []

    def mixup(batch):
        calls.append(1)
        return batch

    res = fit(mlp(6, 3), TensorDataset(x[:64], y[:64]), TensorDataset(x[64:], y[64:]),
              nn.BCEWithLogitsLoss(), {"epochs": None, "max_iters": 10, "eval_every_iters": 4,
                                       "batch_size": 16, **QUIET}, task="tagging", mixup=mixup)
    assert res.iterations == 10 and len(calls) == 10
    assert res.epochs_run == 3  # 4 it/epoch: epochs 1, 2 and part of 3
    # records at 4 and 8 plus the final iteration 10
    assert res.curve("mAP")["iteration"].tolist() == [4, 8, 10]


def test_gradient_clipping_bounds_the_step():
    # SGD lr 1 without momentum: one step moves the parameters by exactly the clipped gradient,
    # so the update norm must be <= grad_clip = 0.01 (the raw gradient is far larger).
    x = torch.ones(4, 3) * 100
    y = torch.zeros(4, 1)
    model = nn.Linear(3, 1)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    fit(model, TensorDataset(x, y), None, nn.MSELoss(),
        {"epochs": 1, "batch_size": 4, "optimizer": "sgd", "momentum": 0.0, "lr": 1.0,
         "grad_clip": 0.01, **QUIET})
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(0.01, rel=1e-4)


def test_bf16_autocast_on_cpu_trains():
    x, y = classification_data()
    res = fit(mlp(4, 3), TensorDataset(x, y), None, nn.CrossEntropyLoss(),
              {"epochs": 5, "batch_size": 30, "lr": 0.02, "amp": "bf16", **QUIET})
    loss = res.curve("loss", "train")["value"].to_numpy()
    assert np.isfinite(loss).all() and loss[-1] < loss[0]
    with pytest.raises(ValueError, match="amp"):
        fit(mlp(4, 3), TensorDataset(x, y), None, nn.CrossEntropyLoss(),
            {"epochs": 1, "amp": "fp16", **QUIET}, device="cpu")


def test_contrastive_batch_fn_with_retrieval_evaluate_fn():
    # dual encoder: audio (N, 8) and text (N, 5) views of the same latent; InfoNCE in batch_fn.
    g = torch.Generator().manual_seed(0)
    z = torch.randn(80, 4, generator=g)
    a = z @ torch.randn(4, 8, generator=g)
    t = z @ torch.randn(4, 5, generator=g)

    class Dual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fa, self.ft = nn.Linear(8, 16), nn.Linear(5, 16)

        def forward(self, batch):
            return (nn.functional.normalize(self.fa(batch["audio"]), dim=-1),
                    nn.functional.normalize(self.ft(batch["text"]), dim=-1))

    def batch_fn(model, batch):
        ea, et = model(batch)
        logits = et @ ea.T / 0.1
        lab = torch.arange(len(logits), device=logits.device)
        return (nn.functional.cross_entropy(logits, lab) + nn.functional.cross_entropy(logits.T, lab)) / 2

    class Pairs(Dataset):
        def __init__(self, a, t):
            self.a, self.t = a, t

        def __len__(self):
            return len(self.a)

        def __getitem__(self, i):
            return {"audio": self.a[i], "text": self.t[i]}

    def evaluate_fn(model, loader):
        ea, et = zip(*(model(move_to_device(b, CPU)) for b in loader))
        sim = torch.cat(et) @ torch.cat(ea).T
        return M.retrieval_metrics(sim, np.arange(len(sim)))

    torch.manual_seed(0)
    res = fit(Dual(), Pairs(a[:60], t[:60]), Pairs(a[60:], t[60:]), None,
              {"epochs": 6, "batch_size": 20, "lr": 0.01, "monitor": "R@1", "mode": "max", **QUIET},
              batch_fn=batch_fn, evaluate_fn=evaluate_fn)
    r1 = res.curve("R@1")["value"].to_numpy()
    assert r1.max() > 1 / 20 * 2  # better than twice chance over 20 candidates
    assert {"R@5", "R@10", "mAP@10"} <= set(res.history.metric)


class KillAfter:
    def __init__(self, epoch: int):
        self.epoch = epoch

    def __call__(self, trainer):
        if trainer.epoch == self.epoch:
            raise KeyboardInterrupt(f"killed after epoch {self.epoch}")


def _resume_run(run_dir, callbacks=(), model_seed=0, sampler=False):
    x, y = tagging_data(n=80)
    ds = DictSet(x[:60], y[:60], seed=5, jitter=0.1)
    if sampler:
        loader = DataLoader(ds, batch_size=8, sampler=balanced_sampler(y[:60].numpy(), seed=2))
    else:
        loader = DataLoader(ds, batch_size=8, shuffle=True)  # shuffled from the global RNG
    cfg = {"epochs": 5, "lr": 0.01, "schedule": "step", "warmup_iters": 5, "step_start_epoch": 2,
           "step_every_epochs": 1, "monitor": "mAP", "mode": "max", "seed": 11, **QUIET}
    return fit(mlp(6, 3, seed=model_seed, dropout=0.3), loader, DataLoader(DictSet(x[60:], y[60:]), batch_size=8),
               nn.BCEWithLogitsLoss(), cfg, task="tagging", run_dir=run_dir, callbacks=callbacks)


@pytest.mark.parametrize("sampler", [False, True])
def test_exact_resume_is_bit_identical(tmp_path, sampler):
    ref = _resume_run(tmp_path / "ref", sampler=sampler)
    with pytest.raises(KeyboardInterrupt):
        _resume_run(tmp_path / "cut", callbacks=[KillAfter(2)], sampler=sampler)
    assert (tmp_path / "cut" / "checkpoint.pt").is_file()
    assert not (tmp_path / "cut" / "done.json").exists()
    # a fresh process would build a differently initialised model: it must not matter
    res = _resume_run(tmp_path / "cut", model_seed=123, sampler=sampler)
    assert not res.from_cache
    for (k, a), (_, b) in zip(ref.model.state_dict().items(), res.model.state_dict().items()):
        assert torch.equal(a, b), k
    pd.testing.assert_frame_equal(ref.history, res.history)
    assert ref.best_metrics == res.best_metrics
    # the checkpoint held the unfinished run: 2 epochs before the cut
    hist = pd.read_csv(tmp_path / "cut" / "history.csv")
    assert hist["epoch"].max() == 5


def test_finished_run_is_loaded_not_retrained(tmp_path):
    first = _resume_run(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "done.json").read_text())["iterations"] == first.iterations
    again = _resume_run(tmp_path / "run", callbacks=[KillAfter(1)], model_seed=99)  # would raise if trained
    assert again.from_cache
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    pd.testing.assert_frame_equal(first.history, again.history)
    # another configuration in the same run directory is refused, naming the key
    x, y = tagging_data(n=20)
    with pytest.raises(ValueError, match="lr"):
        fit(mlp(6, 3), TensorDataset(x, y), None, nn.BCEWithLogitsLoss(),
            {"epochs": 5, "lr": 0.5, **QUIET}, run_dir=tmp_path / "run")


def test_a_finished_run_drops_its_resume_state_by_default_and_keeps_it_when_asked(tmp_path):
    x, y = tagging_data(n=40)
    cfg = {"epochs": 2, "lr": 0.01, "seed": 1, **QUIET}
    assert TrainConfig().keep_checkpoint is False
    kept = fit(mlp(6, 3), TensorDataset(x, y), None, nn.BCEWithLogitsLoss(), {**cfg, "keep_checkpoint": True},
               run_dir=tmp_path / "kept")
    assert (tmp_path / "kept" / "checkpoint.pt").is_file() and (tmp_path / "kept" / "done.json").is_file()
    assert not kept.from_cache

    def run(callbacks=()):
        return fit(mlp(6, 3), TensorDataset(x, y), None, nn.BCEWithLogitsLoss(), cfg,
                   run_dir=tmp_path / "run", callbacks=callbacks)
    with pytest.raises(KeyboardInterrupt):
        run([KillAfter(1)])
    assert (tmp_path / "run" / "checkpoint.pt").is_file()       # unfinished: resumable
    first = run()
    assert (tmp_path / "run" / "done.json").is_file() and not (tmp_path / "run" / "checkpoint.pt").exists()
    again = run([KillAfter(1)])                                  # reloaded, not retrained
    assert again.from_cache
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    # the setting is cosmetic: a run stored with the checkpoint kept is the same run
    assert "keep_checkpoint" not in TrainConfig(keep_checkpoint=False).result_keys()


@pytest.mark.parametrize("epochs, why", [(1.5, "whole number"), ("2", "whole number"), (True, "whole number")])
def test_train_config_refuses_values_of_the_wrong_type(epochs, why):
    with pytest.raises(ValueError, match=rf"TrainConfig\.epochs = .*{why}"):
        TrainConfig(epochs=epochs)
    with pytest.raises(ValueError, match=r"TrainConfig\.shuffle"):
        TrainConfig(shuffle=1)
    assert TrainConfig(epochs=2.0).epochs == 2 and isinstance(TrainConfig(epochs=2.0).epochs, int)
    assert TrainConfig(lr=1).lr == 1                      # an int is a fine float


def test_corrupt_run_files_and_another_model_shape_name_the_run(tmp_path):
    first = _resume_run(tmp_path / "run")
    assert first.iterations > 0
    # a finished run stored for another model shape: the error names the run directory and a key
    x, y = tagging_data(n=20)
    with pytest.raises(RuntimeError, match=r"run directory .*run.* another model shape .*stored \(3, \d+\)"):
        loader = DataLoader(DictSet(x, y), batch_size=8)
        narrow = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
        cfg = {"epochs": 5, "lr": 0.01, "schedule": "step", "warmup_iters": 5, "step_start_epoch": 2,
               "step_every_epochs": 1, "monitor": "mAP", "mode": "max", "seed": 11, **QUIET}
        fit(narrow, loader, loader, nn.BCEWithLogitsLoss(), cfg, task="tagging", run_dir=tmp_path / "run")
    # corrupt marker / config: the error names the file, not a bare JSONDecodeError
    (tmp_path / "run" / "done.json").write_text("{not json")
    with pytest.raises(RuntimeError, match=r"done\.json is unreadable"):
        _resume_run(tmp_path / "run")
    (tmp_path / "run" / "config.json").write_bytes(b"\x00\xff")
    with pytest.raises(RuntimeError, match=r"config\.json is unreadable"):
        _resume_run(tmp_path / "run")


def test_clear_errors():
    x, y = tagging_data(n=20)
    with pytest.raises(KeyError, match="monitor"):
        fit(mlp(6, 3), TensorDataset(x, y), TensorDataset(x, y), nn.BCEWithLogitsLoss(),
            {"monitor": "mAP", **QUIET})  # no task -> only "loss"
    with pytest.raises(FloatingPointError, match="iteration 1"):
        fit(mlp(6, 3), TensorDataset(x, y), None, lambda o, t: o.sum() * float("nan"), QUIET)
    with pytest.raises(KeyError, match="input key"):
        fit(mlp(6, 3), DictSet(x, y), None, nn.BCEWithLogitsLoss(), QUIET, input_key="wave")
    with pytest.raises(ValueError, match="device"):
        pick_device("gpu0")


def test_helpers_predict_device_and_plot():
    assert pick_device("cpu") == CPU
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    b = move_to_device({"x": torch.ones(2), "clip_id": ["a", "b"], "n": 3}, CPU)
    assert b["clip_id"] == ["a", "b"] and b["n"] == 3
    x, y = classification_data(n=30)
    model = mlp(4, 3).eval()
    s, t = predict(model, DataLoader(TensorDataset(x, y), batch_size=7), CPU)
    assert s.shape == (30, 3) and s.dtype == np.float32 and t.tolist() == y.tolist()
    with torch.no_grad():
        assert np.allclose(s, model(x).numpy(), atol=1e-6)
    s2, _ = predict(model, DataLoader(TensorDataset(x, y), batch_size=7), CPU,
                    forward_fn=lambda m, b: (m(b[0]).softmax(-1), b[1]))
    assert np.allclose(s2.sum(1), 1, atol=1e-5)

    import matplotlib
    matplotlib.use("Agg")
    res = fit(mlp(4, 3), TensorDataset(x, y), TensorDataset(x, y), nn.CrossEntropyLoss(),
              {"epochs": 2, "batch_size": 10, **QUIET}, task="classification")
    fig = plot_history(res.history, metrics=["loss", "accuracy"])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    with pytest.raises(KeyError, match="mAP"):
        plot_history(res.history, metrics=["mAP"])


def test_reject_unknown_fields_names_every_typo_and_uses_the_given_error():
    from audiorepro.training.config import TrainConfig, reject_unknown_fields
    reject_unknown_fields(TrainConfig, ["lr", "epochs"], "training config")   # known keys pass
    with pytest.raises(KeyError, match=r"training config: unknown key\(s\) \['eposh', 'lrr'\]"):
        TrainConfig.from_dict({"lrr": 0.1, "eposh": 3, "lr": 0.1})
    with pytest.raises(ValueError, match=r"setup: unknown key\(s\) \['x'\]"):
        reject_unknown_fields(TrainConfig, ["x"], "setup", error=ValueError)
