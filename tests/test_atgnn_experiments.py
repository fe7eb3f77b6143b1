"""ATGNN chapter experiments: recipe, label attention, clip-table data, baselines, seed verdicts,
run caches, devices, label-graph statistics, records, benchmark file."""
from __future__ import annotations

import inspect
import re

import numpy as np
import pandas as pd
import pytest
import torch

from audiorepro import caching
from audiorepro.papers.atgnn import RecipeConfig, TaggingData, label_attention, make_batch_fn
from audiorepro.papers.atgnn.model import build_atgnn


def test_recipe_masks_scale_and_train_config():
    r = RecipeConfig()
    bfn = make_batch_fn(r, (64, 256))
    assert bfn.masks == (24, 48)                    # 48 * 64 / 128, 192 * 256 / 1024
    assert make_batch_fn(r, (128, 1056)).masks == (48, 192)     # the paper's values at 1056
    assert make_batch_fn(r, (128, 1024)).masks == (48, 192)
    assert make_batch_fn(r, (64, 1056)).masks == (24, 192)
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


# ------------------------------------------------------------------ clip-table data (paper profile)
def _write_tiny_table(folder, classes=("bird", "dog", "siren")):
    import numpy as np
    import pandas as pd
    from audiorepro.data.audio import save_audio
    audio = folder / "audio"
    audio.mkdir(parents=True)
    rows = [("a", "train", "bird"), ("b", "train", "dog;siren"), ("c", "valid", "dog"),
            ("d", "test", "bird;siren")]
    rng = np.random.default_rng(0)
    for cid, _, _ in rows:
        save_audio(audio / f"{cid}.wav", rng.standard_normal(16000).astype("float32") * 0.1, 16000)
    tab = folder / "meta" / "tiny.csv"
    tab.parent.mkdir()
    pd.DataFrame([{"clip_id": c, "path": f"audio/{c}.wav", "split": s, "labels": l}
                  for c, s, l in rows]).to_csv(tab, index=False)
    (folder / "meta" / "tiny.classes.txt").write_text("\n".join(classes) + "\n")
    return tab


def test_tagging_data_reads_clip_table_with_kaldi_fbank(tmp_path, monkeypatch):
    from audiorepro.papers.atgnn import tagging_data
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    tab = _write_tiny_table(tmp_path / "ds")
    d = tagging_data(clip_table=tab, data_root=tmp_path / "ds", frames=120, time_mode="crop_pad",
                     clip_seconds=1.0)
    assert d.classes == ["bird", "dog", "siren"]                 # order of the sidecar file
    assert d.sizes() == {"train": 2, "valid": 1, "test": 1}
    assert d.x_train.shape == (2, 120, 128)                       # kaldi_fbank_128, time-major
    assert d.y_train.tolist() == [[1, 0, 0], [0, 1, 1]] and d.y_test.tolist() == [[1, 0, 1]]
    # 1 s at 16 kHz, 25 ms window / 10 ms hop: 1 + (16000 - 400) // 160 = 98 real frames, then padding
    pad = d.x_test[0, 98:]
    assert torch.allclose(pad, pad[0:1].expand_as(pad)) and not torch.allclose(d.x_test[0, 97], pad[0])
    assert abs(float(torch.cat([d.x_train.flatten()]).mean())) < 1e-4   # train-set standardisation
    assert abs(float(d.x_train.std(unbiased=False)) - 1.0) < 1e-4           # one global std, ddof 0
    assert "clip table tiny.csv (3 classes), kaldi_fbank_128" in d.description
    pooled = tagging_data(clip_table=tab, data_root=tmp_path / "ds", frames=16, clip_seconds=1.0)
    assert pooled.x_valid.shape == (1, 16, 128)
    # the fingerprint keys the run caches: same data, same key; other frames or caps, another
    again = tagging_data(clip_table=tab, data_root=tmp_path / "ds", frames=16, clip_seconds=1.0)
    capped = tagging_data(clip_table=tab, data_root=tmp_path / "ds", frames=16, clip_seconds=1.0,
                          max_train=1)
    assert len(pooled.fingerprint) == 16 and again.fingerprint == pooled.fingerprint
    assert len({d.fingerprint, pooled.fingerprint, capped.fingerprint}) == 3


def test_tagging_data_names_bad_paths(tmp_path):
    import pytest
    from audiorepro.papers.atgnn import tagging_data
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        tagging_data(clip_table=tmp_path / "nope.csv")
    tab = _write_tiny_table(tmp_path / "ds")
    with pytest.raises(FileNotFoundError, match="data_root"):
        tagging_data(clip_table=tab, data_root=tmp_path / "missing")
    with pytest.raises(ValueError, match="time_mode"):
        from audiorepro.papers.atgnn.data import _fit_frames
        _fit_frames(torch.zeros(4, 10), 8, "stretch")


# ------------------------------------------------------------------ baselines and seeds
def test_ast_and_panns_baselines_map_features_to_logits():
    from audiorepro.papers.atgnn import build_model
    torch.set_num_threads(1)
    x = torch.randn(2, 64, 32)                                    # (B, T, F)
    for name, kw in (("ast_base384_f10_t10_527", {"scale": "cpu"}), ("panns_cnn14_16k", {"scale": 0.125})):
        m = build_model(name, 5, (32, 64), seed=0, **kw).eval()
        assert m(x).shape == (2, 5), name
    a1 = build_model("ast_base384_f10_t10_527", 5, (32, 64), seed=1)
    a2 = build_model("ast_base384_f10_t10_527", 5, (32, 64), seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a1.parameters(), a2.parameters()))


def test_psla_baseline_matches_the_papers_size_and_pools_probabilities_with_attention(tmp_path):
    from audiorepro.backbones.official import write_official_checkpoint
    from audiorepro.backbones.counting import count_parameters
    from audiorepro.papers.atgnn import build_model, count_baselines, table_rows
    from audiorepro.papers.atgnn.model import PSLA
    from audiorepro.results import paper_numbers
    torch.set_num_threads(1)
    full = PSLA(527, "full")
    pn = paper_numbers("atgnn").query("table == 'table2' and row == 'PSLA' and column == 'params'")
    assert count_parameters(full)["trainable"] / 1e6 == pytest.approx(float(pn["value"].iloc[0]), rel=0.01)
    assert full.features[0][0].in_channels == 1                       # one-channel stem
    small = build_model("psla", 5, (128, 64), seed=0).eval()          # cpu size by default
    x = torch.randn(2, 64, 128)                                       # (B, T, F)
    p = small.probabilities(x)
    assert p.shape == (2, 5) and bool(((p > 0) & (p < 1)).all())
    # the logits are the pooled probabilities' logit; the heads start with equal weights
    assert torch.allclose(torch.sigmoid(small(x)), p, atol=1e-6)
    assert torch.allclose(small.head_weight, torch.full((4,), 0.25))
    # the ImageNet file of torchvision (official format, random values) loads into the features,
    # the one-channel stem and the classifier left out
    path = write_official_checkpoint("efficientnet_b2_torchvision", tmp_path)
    left = full.load_imagenet(path)
    ref = torch.load(path, weights_only=True)
    assert set(left) == {"features.0.0.weight", "classifier.1.weight", "classifier.1.bias"}
    assert torch.equal(full.features[1][0].block[0][0].weight, ref["features.1.0.block.0.0.weight"])
    with pytest.raises(ValueError, match="full-size PSLA only"):
        PSLA(5, "cpu").load_imagenet(path)
    assert table_rows(psla_scale="full")["psla"] == ("psla", {"scale": "full"}, "PSLA")
    counted = count_baselines(["psla"], profile="smoke", record=False)
    assert counted["trainable (M)"].iloc[0] == pytest.approx(13.64, abs=0.01)
    # a table with a PSLA row: MACs are counted for the ATGNN rows only
    from types import SimpleNamespace
    from audiorepro.papers.atgnn import table_summary
    runs = pd.DataFrame([{"model": "psla", "paper row": "PSLA", "seed": 0, "test mAP": 0.5,
                          "params": 10, "train s": 1.0, "result": SimpleNamespace(model=small)}])
    summary = table_summary(runs, {"psla": ("psla", {"scale": "cpu"}, "PSLA")}, (128, 64))
    assert np.isnan(summary["GMACs"].iloc[0])


def _runs(values):
    import pandas as pd
    return pd.DataFrame([{"model": m, "paper row": m, "seed": s, "test mAP": v}
                         for m, vals in values.items() for s, v in enumerate(vals)])


def test_seed_summary_mean_and_std():
    from audiorepro.papers.atgnn import seed_summary
    s = seed_summary(_runs({"a": [0.2, 0.4], "b": [0.3]}))
    assert s["model"].tolist() == ["a", "b"]
    assert abs(s["mean"][0] - 0.3) < 1e-12 and abs(s["std"][0] - 0.1414213562) < 1e-9
    assert s["seeds"].tolist() == [2, 1] and np.isnan(s["std"][1])
    assert s["test mAP (mean +- std)"][0] == "0.300 +- 0.141"


def _tagging_records(rows, run_group, n=200, classes=5, seeds=(0, 1, 2), table="table2"):
    """Hand-made per-seed records with per-item outputs: rows = {row: "signal" | "weak" (less
    signal, still far above chance) | "noise" (random scores: chance) | name of an earlier row
    (identical outputs)}."""
    from audiorepro import results
    from audiorepro.metrics import tagging_metrics
    for seed in seeds:
        rng = np.random.default_rng(seed)
        y = (rng.random((n, classes)) < 0.3).astype(float)
        y[np.arange(n), rng.integers(0, classes, n)] = 1.0
        made = {}
        for row, kind in rows.items():
            if kind in made:
                scores = made[kind]
            elif kind in ("signal", "weak"):
                scores = y + (0.3 if kind == "signal" else 1.0) * rng.standard_normal(y.shape)
            else:
                scores = rng.standard_normal(y.shape)
            made[row] = scores
            m = tagging_metrics(y, scores)
            results.record("atgnn", table, {"mAP": float(m["mAP"])},
                           params={"paper_row": row, "seed": seed, "run_group": run_group},
                           dataset="hand-made", scale="test", profile="smoke",
                           items=results.tagging_items([f"clip{i}" for i in range(n)], scores, y))


def test_decide_claims_from_hand_made_item_records(tmp_path, monkeypatch):
    from audiorepro import results
    from audiorepro.papers.atgnn import decide_claims
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    better, worse = "ATGNN-pyr-s | synthetic world", "ATGNN-pyr-s (-MLG) | synthetic world"
    # a large true gap: scores that follow the targets closely vs. loosely
    _tagging_records({better: "signal", worse: "weak"}, results.new_run_group())
    v = decide_claims("smoke", "03_tables_2_3", claims=["mlg-helps-synthetic"]).iloc[0]
    assert v["verdict"] == "reproduced" and v["seeds"] == 3 and v["items"] == 200
    assert 0 < v["lo"] <= v["effect"] <= v["hi"]
    # the reversed gap
    _tagging_records({better: "weak", worse: "signal"}, results.new_run_group())
    v = decide_claims("smoke", "03_tables_2_3", claims=["mlg-helps-synthetic"]).iloc[0]
    assert v["verdict"] == "not reproduced" and v["hi"] < 0
    # a row at chance decides nothing, on either side of the comparison
    for kinds in (("noise", "signal"), ("signal", "noise")):
        _tagging_records(dict(zip((better, worse), kinds)), results.new_run_group())
        v = decide_claims("smoke", "03_tables_2_3", claims=["mlg-helps-synthetic"]).iloc[0]
        assert v["verdict"] == "inconclusive" and abs(v["effect"]) > 0.3
        assert "not measurably above chance: " + (better if kinds[0] == "noise" else worse) in v["evidence"]
    # identical outputs: no evidence either way (the newest run group only)
    _tagging_records({better: "noise", worse: better}, results.new_run_group())
    table = decide_claims("smoke", "03_tables_2_3")
    v = table.set_index("claim").loc["mlg-helps-synthetic"]
    assert v["verdict"] == "inconclusive" and v["effect"] == 0.0
    # the notebook's other claims: their rows have no record
    assert (table.set_index("claim").loc["mlg-helps-audioset", "verdict"] == "not yet measured")
    stored = results.claims_table(["atgnn"], profile="smoke").set_index("claim_id")
    assert stored.loc["mlg-helps-synthetic", "verdict"] == "inconclusive"
    assert stored.loc["mlg-helps-synthetic", "notebook"] == "atgnn/03_tables_2_3"
    with pytest.raises(KeyError, match="decides no claim"):
        decide_claims("smoke", "99_nothing")


def test_decide_adjacency_claim_needs_every_seed(tmp_path, monkeypatch):
    from audiorepro.papers.atgnn import LabelGraphStats, decide_adjacency_claim
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    z = np.zeros((2, 2))

    def st(rho, p):
        return LabelGraphStats(z, z, z, np.ones(2), np.ones((2, 2), bool), rho, p)
    d = _toy_data()
    kw = dict(data=d, seeds=[0, 1], profile="smoke", notebook="atgnn/04_label_graph", register=False)
    assert decide_adjacency_claim([st(0.3, 1e-4), st(0.2, 1e-3)], **kw)[0] == "reproduced"
    assert decide_adjacency_claim([st(0.3, 1e-4), st(0.2, 0.2)], **kw)[0] == "inconclusive"
    assert decide_adjacency_claim([st(-0.3, 1e-4), st(-0.2, 1e-3)], **kw)[0] == "not reproduced"
    assert decide_adjacency_claim([st(0.3, 1e-4), st(-0.2, 1e-3)], **kw)[0] == "inconclusive"


def test_record_row_names_what_ran():
    from audiorepro.papers.atgnn import record_row
    synth = _toy_data()
    synth.description = "synthetic world n24 seed 0 (44 classes)"
    real = _toy_data(classes=527)
    real.description = "clip table audioset_balanced.csv (527 classes), kaldi_fbank_128"
    user = _toy_data(classes=3)
    user.description = "clip table my_birds.csv (3 classes), kaldi_fbank_128 pooled to 64 frames"
    assert user.task == "my_birds" and synth.task == "synthetic world"
    assert record_row("ATGNN-pyr-s", "pyr-s", {}, user) == "ATGNN-pyr-s | my_birds"
    assert record_row("ATGNN-pyr-s", "pyr-tiny", {}, user) == "ATGNN-pyr-s | my_birds"
    assert record_row("ATGNN-pyr-s", "pyr-s", {}, synth) == "ATGNN-pyr-s | synthetic world"
    assert record_row("ATGNN-pyr-s", "pyr-s", {}, real) == "ATGNN-pyr-s"
    assert record_row("ATGNN-pyr-s", "pyr-tiny", {}, real) == "ATGNN-pyr-s | scaled model"
    assert record_row("PANNs", "panns_cnn14_16k", {"scale": 1.0}, real) == "PANNs"
    assert record_row("PANNs", "panns_cnn14_16k", {"scale": 0.125}, real) == "PANNs | scaled model"
    # a table made by the official FSD50K adapter (a copy or an official-format miniature with
    # fewer classes present) runs the paper's protocol: the paper's rows
    mini = _toy_data(classes=11)
    mini.description = "clip table fsd50k.csv (11 classes), kaldi_fbank_128"
    mini.official_dataset = "FSD50K"
    assert record_row("ATGNN-pyr-s", "pyr-s", {}, mini) == "ATGNN-pyr-s"
    assert record_row("ATGNN-pyr-s", "pyr-tiny", {}, mini) == "ATGNN-pyr-s | scaled model"
    assert record_row("AST", "ast_base384_f10_t10_527", {"scale": "base"}, real) == "AST"


def _toy_data(fingerprint="toy", n=(2, 2, 2), frames=16, mels=8, classes=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = []
    for k in n:
        xs += [torch.randn(k, frames, mels, generator=g), (torch.rand(k, classes, generator=g) > 0.5).float()]
    return TaggingData(*xs, [f"c{i}" for i in range(classes)], "toy", fingerprint=fingerprint)


def test_run_dir_depends_on_everything_that_defines_a_run(tmp_path, monkeypatch):
    from audiorepro.papers.atgnn import run_dir_for
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    d = _toy_data()
    r0 = RecipeConfig(seed=0)
    base = run_dir_for("pyr-tiny", {}, d, r0)
    assert base == run_dir_for("pyr-tiny", {}, d, RecipeConfig(seed=0))
    assert base.parent == tmp_path / "cache" / "runs" / "atgnn"
    assert base.name.startswith("pyr-tiny_s0_")
    others = {run_dir_for("pyr-tiny", {"use_mlg": False}, d, r0), run_dir_for("pyr-tiny", {}, d, RecipeConfig(seed=1)),
              run_dir_for("pyr-tiny", {}, d, RecipeConfig(epochs=3)), run_dir_for("iso-tiny", {}, d, r0),
              run_dir_for("pyr-tiny", {}, _toy_data("other data"), r0),
              run_dir_for("pyr-tiny", {}, d, r0, amp="bf16")}
    assert base not in others and len(others) == 6
    # a change of the model / training source gives a new folder (no stale reload)
    real = caching._module_digest
    monkeypatch.setattr(caching, "_module_digest",
                        lambda name: real(name) + ("x" if name == "audiorepro.papers.atgnn" else ""))
    assert run_dir_for("pyr-tiny", {}, d, r0) != base
    # data without a fingerprint cannot key a cache
    with pytest.raises(ValueError, match="fingerprint"):
        run_dir_for("pyr-tiny", {}, _toy_data(""), r0)


def test_baseline_runs_are_keyed_by_the_backbone_source(tmp_path, monkeypatch):
    from audiorepro.papers.atgnn import run_dir_for
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    d, r0 = _toy_data(), RecipeConfig()
    ast, pyr = run_dir_for("ast_base384_f10_t10_527", {}, d, r0), run_dir_for("pyr-tiny", {}, d, r0)
    real = caching._module_digest
    monkeypatch.setattr(caching, "_module_digest",
                        lambda name: real(name) + ("x" if name == "audiorepro.backbones" else ""))
    assert run_dir_for("ast_base384_f10_t10_527", {}, d, r0) != ast
    assert run_dir_for("pyr-tiny", {}, d, r0) == pyr           # ATGNN runs do not execute it


def test_train_row_trains_once_then_reloads(tmp_path, monkeypatch):
    from audiorepro.papers.atgnn import train_row
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    torch.set_num_threads(1)
    d = _toy_data(n=(8, 4, 4), frames=32, mels=32, classes=4)
    r = RecipeConfig(epochs=1, batch_size=4, warmup_iters=1)
    first = train_row("pyr-tiny", d, r, seed=0)
    assert not first["result"].from_cache and 0.0 <= first["test mAP"] <= 1.0
    assert first["paper row"] == "ATGNN-pyr-s | toy" and first["params"] > 0
    assert first["items"].n == 4 and first["items"].scores.shape == (4, 4)
    again = train_row("pyr-tiny", d, r, seed=0)
    assert again["result"].from_cache and again["test mAP"] == pytest.approx(first["test mAP"])


def test_entry_points_default_to_the_auto_device():
    import audiorepro.papers.atgnn as A
    for fn in (A.tagging_data, A.train_tagger, A.evaluate_tagging, A.label_attention, A.train_row,
               A.train_rows, A.k_sweep, A.plot_label_attention):
        assert inspect.signature(fn).parameters["device"].default == "auto", fn.__name__


def test_k_spec_shares_the_default_run():
    from audiorepro.papers.atgnn import ATGNNConfig, k_spec
    from audiorepro.papers.atgnn import table_rows
    assert k_spec(ATGNNConfig.k) == ("pyr-tiny", {"use_mlg": False}, f"k={ATGNNConfig.k}")
    assert k_spec(ATGNNConfig.k)[:2] == table_rows()["pyr-tiny (-MLG)"][:2]
    assert k_spec(20) == ("pyr-tiny", {"use_mlg": False, "k": 20}, "k=20")
    assert k_spec(ATGNNConfig.k, mlg=True)[:2] == table_rows()["pyr-tiny"][:2]
    assert k_spec(20, mlg=True) == ("pyr-tiny", {"k": 20}, "k=20 (+MLG)")


def test_adjacency_vs_lift_hand_computed():
    from audiorepro.papers.atgnn import adjacency_vs_lift

    class Stub:                                   # a model is only asked for its adjacencies
        def __init__(self, *mats):
            self.mats = [torch.tensor(m) for m in mats]

        def adjacency(self):
            return self.mats
    # labels a, b always together (lift 2), c alone (lift 0 with a and b), d never in training
    y = torch.tensor([[1., 1., 0., 0.], [1., 1., 0., 0.], [0., 0., 1., 0.], [0., 0., 1., 0.]])
    z = [0.] * 4
    with pytest.warns(RuntimeWarning, match="constant"):                    # scipy's ConstantInputWarning
        s = adjacency_vs_lift(Stub([[0., 2., 0., 0.], [0., 0., 1., 0.], z, z],
                                   [[0., 0., 0., 0.], [0., 0., 1., 0.], [2., 0., 0., 0.], z]), y)
    assert np.allclose(s.prevalence, [0.5, 0.5, 0.5, 0.0])
    assert np.isclose(s.lift[0, 1], 2.0) and np.isclose(s.lift[0, 2], 0.0) and np.isclose(s.lift[2, 2], 2.0)
    assert s.A[0, 1] == 1.0 and s.A[1, 2] == 1.0 and s.A_sym[0, 2] == 0.5   # mean of blocks, symmetrised
    assert s.n_pairs == 3 and not s.mask[3].any() and not s.mask.diagonal().any()
    assert np.allclose(s.A_sym[s.mask], 0.5) and np.isnan(s.rho)            # constant A: undefined
    # A large where the lift is large, equal where the lifts tie: rank correlation 1
    s = adjacency_vs_lift(Stub([[0., 3., 1., 0.], [3., 0., 1., 0.], [1., 1., 0., 0.], z]), y)
    assert s.rho == pytest.approx(1.0) and "3 label pairs" in s.summary()


def test_record_runs_writes_one_record_per_row_and_seed(tmp_path, monkeypatch):
    import pandas as pd
    from audiorepro import results
    from audiorepro.metrics import tagging_metrics
    from audiorepro.papers.atgnn import record_runs, table_rows
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], float)
    lines = []
    for m, per_seed in {"pyr-tiny": [[0.9, 0.1, 0.8, 0.2], [0.2, 0.9, 0.1, 0.5]],
                        "panns": [[0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4]]}.items():
        for seed, col in enumerate(per_seed):
            scores = np.stack([np.array(col), 1 - np.array(col)], 1)
            mt = tagging_metrics(y, scores)
            lines.append({"model": m, "paper row": table_rows()[m][2] + " | synthetic world",
                          "seed": seed, "test mAP": float(mt["mAP"]), "test AUC": float(mt["AUC"]),
                          "params": 1e6, "train s": 2.0,
                          "items": results.tagging_items(["a", "b", "c", "d"], scores, y)})
    runs = pd.DataFrame(lines)
    record_runs(runs, table_rows(), "table2", _toy_data(), run_group="g1", frames=16, epochs=1,
                scale="1 epoch", profile="smoke")
    recs = results.load_records("atgnn", "table2")
    recs = recs[recs.metric == "mAP"]
    assert len(recs) == 4 and set(recs["param.seed"]) == {0, 1}
    got = {(r, s): v for r, s, v in zip(recs["row"], recs["param.seed"], recs["value"])}
    want = {(l["paper row"], l["seed"]): l["test mAP"] for l in lines}
    assert got == pytest.approx(want)
    assert set(recs["param.run_group"]) == {"g1"}
    items = results.load_items(recs["record_id"].iloc[0])["mAP"]
    assert items.n == 4 and items.scores.shape == (4, 2)


def test_code_digest_tracks_the_model_source(monkeypatch):
    from audiorepro import caching
    from audiorepro.papers.atgnn import experiments as E
    first = E.code_digest()
    assert len(first) == 16 and first == E.code_digest()
    real = caching._module_digest
    monkeypatch.setattr(caching, "_module_digest",
                        lambda name: real(name) + ("x" if name == "audiorepro.papers.atgnn" else ""))
    assert E.code_digest() != first


# ------------------------------------------------------------------ benchmark file
def test_benchmark_table_flattens_json(tmp_path):
    import json
    import pytest
    from audiorepro.papers.atgnn import benchmark_table
    assert benchmark_table(tmp_path / "none.json") is None
    p = tmp_path / "atgnn.json"
    p.write_text(json.dumps({"throughput": {"clips_per_s": 1.5, "share": 0.25},
                             "knn": [{"frames": 60000, "rss_increase_MB": 12.0}],
                             "machine": "x"}))
    t = benchmark_table(p)
    assert len(t) == 5
    assert t[(t.section == "throughput") & (t.quantity == "share")]["value"].item() == 0.25
    assert t[(t.section == "knn") & (t.quantity == "frames")]["item"].item() == "[0]"
    p.write_text("{broken")
    with pytest.raises(ValueError, match="atgnn.json"):
        benchmark_table(p)


def test_table_without_valid_split_holds_out_train_clips(tmp_path, monkeypatch):
    import pandas as pd
    from audiorepro.papers.atgnn import tagging_data
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    tab = _write_tiny_table(tmp_path / "ds")
    df = pd.read_csv(tab)
    df.loc[df.split == "valid", "split"] = "train"                # AudioSet: train + test only
    df.to_csv(tab, index=False)
    d = tagging_data(clip_table=tab, data_root=tmp_path / "ds", frames=16, clip_seconds=1.0)
    assert d.sizes() == {"train": 2, "valid": 1, "test": 1}       # every 20th train clip: the first
    assert d.y_valid.tolist() == [[1, 0, 0]] and "every 20th train clip" in d.description


# ------------------------------------------------------------------ package layout
def _imports(path):
    import ast
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
    return names


def test_model_imports_no_results_book_training_or_experiments():
    from pathlib import Path
    import audiorepro.papers.atgnn.model as M
    bad = [n for n in _imports(Path(M.__file__))
           if n.startswith(("audiorepro.results", "audiorepro.book", "audiorepro.training", "."))
           or n.endswith(("experiments", "figures", "data"))]
    assert bad == []


def test_no_core_module_imports_the_paper():
    from pathlib import Path
    import audiorepro
    root = Path(audiorepro.__file__).parent
    users = [str(p.relative_to(root)) for p in root.rglob("*.py")
             if "papers" not in p.relative_to(root).parts
             and any("papers.atgnn" in n or n in ("audiorepro.papers", "..papers") for n in _imports(p))]
    assert users == []


def test_count_helpers_name_a_bad_parameter():
    from audiorepro.papers.atgnn import count_baselines, count_variants
    with pytest.raises(KeyError, match="variants.*pyr-x"):
        count_variants(["pyr-x"], ["audioset"], profile="smoke", record=False)
    with pytest.raises(KeyError, match="datasets.*esc50"):
        count_variants(["pyr-s"], ["esc50"], profile="smoke", record=False)
    with pytest.raises(KeyError, match="baselines.*cnn6"):
        count_baselines(["cnn6"], profile="smoke", record=False)
    assert len(count_baselines([], profile="smoke", record=False)) == 0


def test_train_row_initialises_the_pgn_from_an_official_vig_file(tmp_path, monkeypatch):
    from audiorepro.backbones.official import write_official_checkpoint
    from audiorepro.papers.atgnn import checkpoint_digest, run_dir_for, train_row
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    def official_file(folder):
        # random weights in the official format; BN running variances made valid (the writer
        # draws them from N(0, 0.02), negative half the time: a forward would give NaN)
        path = write_official_checkpoint("vig_pyramid_s_224_1000", folder)
        sd = torch.load(path, weights_only=True)
        sd = {k: (v.abs() + 1.0 if k.endswith("running_var") else v) for k, v in sd.items()}
        torch.save(sd, path)
        return path
    ckpt = official_file(tmp_path / "vig")
    d = _toy_data(n=(2, 2, 2), frames=32, mels=32, classes=3)
    r = RecipeConfig(epochs=1, batch_size=2, warmup_iters=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                 # a 27 M model on a shared machine: no thread thrash
    try:
        row = train_row("pyr-s", d, r, seed=0, checkpoint=ckpt)
    finally:
        torch.set_num_threads(threads)
    assert row["init"].startswith("loaded ") and not row["init"].startswith("loaded 0 ")
    # the initialisation is part of the run's identity; another file -> another run
    other = tmp_path / "other.pth"
    sd = torch.load(ckpt, weights_only=True)
    torch.save({k: v + 1.0 if v.is_floating_point() else v for k, v in sd.items()}, other)
    assert checkpoint_digest(ckpt) != checkpoint_digest(other)
    dirs = {run_dir_for("pyr-s", {}, d, r, init=i) for i in ("", checkpoint_digest(ckpt),
                                                           checkpoint_digest(other))}
    assert len(dirs) == 3
    # baselines ignore it; a missing file is named
    with pytest.raises(FileNotFoundError, match="parameter checkpoint"):
        train_row("pyr-s", d, r, seed=0, checkpoint=tmp_path / "missing.pth")
    from audiorepro.papers.atgnn import train_rows
    with pytest.raises(KeyError, match="checkpoints names architecture"):
        train_rows(["pyr-tiny"], d, r, [0], checkpoints={"pyr-s": ckpt})


def test_plg_directions_hand_computed():
    from audiorepro.papers.atgnn.model import ATGNNConfig, plg_features
    lq = torch.tensor([[[1.0, -2.0]]])                    # one label node, C = 2
    pk = torch.tensor([[[0.0, 0.0], [3.0, -1.0], [5.0, 9.0]]])
    idx = torch.tensor([[[0, 1]]])                         # neighbours: patches 0 and 1
    # [l, max_j (x_j - l)] interleaved: x - l = (-1, 2), (2, 1) -> max (2, 2)
    assert plg_features(lq, pk, idx, "x_minus_l").tolist() == [[[1.0, 2.0, -2.0, 2.0]]]
    # [l, max_j (l - x_j)]: l - x = (1, -2), (-2, -1) -> max (1, -1)
    assert plg_features(lq, pk, idx, "l_minus_x").tolist() == [[[1.0, 1.0, -2.0, -1.0]]]
    with pytest.raises(ValueError, match="plg_direction"):
        ATGNNConfig(plg_direction="both")


def test_per_sample_mixup_mixes_each_clip_with_its_own_weight():
    r = RecipeConfig(mixup_prob=1.0, mixup_per_sample=True, time_mask=0, freq_mask=0,
                     scale_masks=False)
    bfn = make_batch_fn(r, (8, 16))
    n = 8
    x = torch.zeros(n, 16, 8)
    y = torch.eye(n)                                      # clip i carries only label i

    class Keep(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2))[:, None].expand(-1, n)
    m = Keep().train()
    _, _, ym = bfn(m, (x, y))
    assert torch.allclose(ym.sum(1), torch.ones(n))      # convex mixtures of one-hot rows
    own = ym.diagonal()
    assert len(set(own.round(decimals=5).tolist())) > 1  # one weight per clip, not per batch
    r0 = RecipeConfig(mixup_prob=0.0, mixup_per_sample=True, time_mask=0, freq_mask=0,
                      scale_masks=False)
    _, _, y0 = make_batch_fn(r0, (8, 16))(m, (x, y))
    assert torch.equal(y0, y)                             # probability 0: nothing mixed


def test_table_rows_reference_options_only_when_not_default():
    from audiorepro.papers.atgnn import table_rows
    assert table_rows()["pyr-tiny"][1] == {}
    rows = table_rows(drop_path=0.1, plg_direction="l_minus_x")
    # PLG exists only in MLG blocks: a -MLG row is the same model whatever the PLG direction
    assert rows["pyr-tiny (-MLG)"][1] == {"use_mlg": False, "drop_path": 0.1}
    assert rows["iso"][1] == {"drop_path": 0.1, "plg_direction": "l_minus_x"}
    assert "drop_path" not in rows["panns"][1]


def test_k_spec_of_the_paper_model_shares_the_table_rows_run():
    import pytest
    from audiorepro.papers.atgnn import ATGNNConfig, k_spec, table_rows
    rows = table_rows(drop_path=0.1, plg_direction="l_minus_x")
    extra = rows["pyr-s"][1]
    # k = 9 (the default) with the reference-code overrides is exactly the Table III row
    assert k_spec(ATGNNConfig.k, arch="pyr-s", extra=extra)[:2] == rows["pyr-s (-MLG)"][:2]
    assert k_spec(15, arch="pyr-s", extra=extra) == ("pyr-s", {"use_mlg": False, "drop_path": 0.1, "k": 15}, "k=15")
    assert k_spec(15, mlg=True, arch="pyr-s", extra=extra) == (
        "pyr-s", {"drop_path": 0.1, "plg_direction": "l_minus_x", "k": 15}, "k=15 (+MLG)")
    with pytest.raises(KeyError, match="parameter arch.*'resnet'"):
        k_spec(9, arch="resnet")


def test_k_sweep_rejects_checkpoints_of_another_architecture():
    import pytest
    from audiorepro.papers.atgnn import RecipeConfig, k_sweep
    with pytest.raises(KeyError, match=r"checkpoints.*\['pyr-med'\].*arch='pyr-s'"):
        k_sweep([9], [0], data=None, recipe=RecipeConfig(), arch="pyr-s",
                checkpoints={"pyr-med": "pvig_m_83.1.pth.tar"})


def _data_stub(official: str, description: str = "clip table x.csv (200 classes), fbank"):
    from audiorepro.papers.atgnn import TaggingData
    z = torch.zeros(1, 16, 8)
    y = torch.zeros(1, 2)
    return TaggingData(z, y, z, y, z, y, classes=["a", "b"], description=description,
                       fingerprint="f", official_dataset=official)


def test_check_table_names_the_parameter_and_the_allowed_values():
    import pytest
    from audiorepro.papers.atgnn import check_table
    assert check_table("table2") == "table2" and check_table("table3") == "table3"
    for bad in ("table1", "Table2", "table 3", ""):
        with pytest.raises(ValueError, match=r"parameter table=.*allowed values: \['table2', 'table3'\]"):
            check_table(bad)
    # an official data set recorded under the other data set's table is refused before training
    with pytest.raises(ValueError, match=r"table='table2' is the paper's AudioSet table.*FSD50K "
                                         r"adapter; allowed value: \['table3'\]"):
        check_table("table2", _data_stub("FSD50K"))
    assert check_table("table3", _data_stub("FSD50K")) == "table3"
    assert check_table("table2", _data_stub("AudioSet")) == "table2"
    # a user's table (no official adapter) or the synthetic world may use either table
    assert check_table("table3", _data_stub("")) == "table3"


def test_label_graph_spec_needs_an_atgnn_row_with_mlg():
    import pytest
    from audiorepro.papers.atgnn import label_graph_spec, table_rows
    rows = table_rows(drop_path=0.1)
    assert label_graph_spec("pyr-s", rows) == rows["pyr-s"]
    for bad in ("pyr-s (-MLG)", "ast", "panns"):
        with pytest.raises(ValueError, match=rf"parameter model='{re.escape(bad)}'.*allowed values: "
                                             rf"\['iso', 'iso-tiny', 'iso-tiny-dilated', 'pyr-med', 'pyr-med-tiny-dilated', 'pyr-s', "
                                             rf"'pyr-tiny', 'pyr-tiny-dilated'\]"):
            label_graph_spec(bad, rows)
    with pytest.raises(KeyError, match="parameter model='vit'"):
        label_graph_spec("vit", rows)


def test_tagging_data_caps_keep_every_class_of_a_sorted_table(tmp_path, monkeypatch):
    """max_train draws its clips with ClipTable.subsample: a table sorted by label keeps every
    class (the first rows would hold one class only)."""
    import soundfile as sf
    from audiorepro.papers.atgnn import tagging_data
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    folder = tmp_path / "sorted"
    (folder / "audio").mkdir(parents=True)
    rows = []
    rng = np.random.default_rng(0)
    for c in ("a", "b", "c", "d"):
        for i in range(4):
            sf.write(folder / "audio" / f"{c}{i}.wav", rng.normal(0, 0.1, 1600).astype(np.float32),
                     16000)
            rows.append({"clip_id": f"{c}{i}", "path": f"audio/{c}{i}.wav",
                         "split": ("train", "train", "val", "test")[i], "labels": c})
    pd.DataFrame(rows).to_csv(folder / "sorted.csv", index=False)
    d = tagging_data(clip_table=folder / "sorted.csv", frames=16, clip_seconds=0.1, max_train=4)
    # the 'val' rows are read as the validation split (not dropped)
    assert d.sizes() == {"train": 4, "valid": 4, "test": 4}
    assert d.y_train.sum(0).tolist() == [1.0, 1.0, 1.0, 1.0]     # one clip of every class


def test_single_label_tables_also_get_accuracy_and_multi_label_ones_do_not():
    from audiorepro.papers.atgnn.experiments import held_out_metrics
    one_hot = np.eye(3)[[0, 1, 2, 1]]
    scores = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    out = held_out_metrics(one_hot, scores)
    assert out["accuracy"] == 0.75                       # clip 3 (class 2) is predicted as class 0
    assert set(out) == {"mAP", "AUC", "accuracy"}
    multi = one_hot.copy()
    multi[0, 2] = 1                                      # a clip with two classes: tagging metrics only
    assert set(held_out_metrics(multi, scores)) == {"mAP", "AUC"}


def test_init_label_names_the_initialisation_that_ran():
    from audiorepro.papers.atgnn.experiments import init_label

    assert init_label("random") == "random init"
    assert init_label("ImageNet EfficientNet-B2 features (x.pth; 2 keys left out)") == "ImageNet EfficientNet-B2 init"
    assert init_label("310 of 312 tensors loaded") == "ImageNet ViG init"


def test_train_row_starts_the_ast_row_from_its_released_file_and_refuses_a_panns_file(tmp_path, monkeypatch):
    """Issue #17: the AST baseline from AST's released AudioSet weights when given (labelled),
    its classifier replaced for another class set; the PANNs row cannot read a PANNs file here."""
    from audiorepro.backbones import build_backbone
    from audiorepro.papers.atgnn import train_row
    from audiorepro.papers.atgnn.experiments import AUDIOSET_CLASSES, init_label
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    d = _toy_data(n=(2, 2, 2), frames=32, mels=32, classes=3)
    torch.manual_seed(5)
    release = build_backbone("ast_base384_f10_t10_527", scale="cpu", num_classes=AUDIOSET_CLASSES,
                             input_fdim=32, input_tdim=32)
    path = tmp_path / "audioset_10_10_0.4593.pth"
    torch.save({f"module.{k}": v for k, v in release.state_dict().items()}, path)
    r = RecipeConfig(epochs=1, batch_size=2, warmup_iters=1, lr=1e-12)  # the weights all but stay
    row = train_row("ast", d, r, seed=0, checkpoint=path)
    assert init_label(row["init"]) == "AudioSet AST init" and "new classifier" in row["init"]
    trained = row["result"].model.backbone.state_dict()
    block = next(k for k in release.state_dict() if k.startswith("v.blocks.0.") and k.endswith("weight"))
    assert torch.allclose(trained[block].cpu(), release.state_dict()[block], atol=1e-6)
    assert trained["mlp_head.1.weight"].shape[0] == 3                  # the task's 3 classes
    with pytest.raises(ValueError, match="which no released PANNs file reads; the row panns-32k"):
        train_row("panns", d, r, seed=0, checkpoint=path)


def test_panns_32k_row_starts_from_the_released_file_on_its_own_front_end(tmp_path, monkeypatch):
    """Issue #17: the PANNs row (CNN14 32 kHz) from PANNs' released AudioSet file, fed its own
    64-bin log-mel (not standardised), its classifier replaced; refused on the chapter's
    features, at a reduced width, and without its own data in train_rows."""
    from audiorepro.backbones.official import write_official_checkpoint
    from audiorepro.papers.atgnn import table_rows, train_row, train_rows
    from audiorepro.papers.atgnn.experiments import init_label
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    torch.set_num_threads(1)
    path = write_official_checkpoint("panns_cnn14_32k", tmp_path / "checkpoints")
    release = torch.load(path, map_location="cpu", weights_only=True)["model"]
    d = _toy_data(n=(2, 2, 2), frames=32, mels=64, classes=3)
    d.frontend = "panns_32k"
    r = RecipeConfig(epochs=1, batch_size=2, warmup_iters=1, lr=1e-12)
    spec = table_rows(panns_scale=1.0)["panns-32k"]
    row = train_row("panns-32k", d, r, seed=0, spec=spec, checkpoint=path)
    assert init_label(row["init"]) == "AudioSet PANNs init" and "new classifier" in row["init"]
    trained = row["result"].model.backbone.state_dict()
    assert torch.allclose(trained["conv_block3.conv1.weight"], release["conv_block3.conv1.weight"], atol=1e-6)
    assert trained["fc_audioset.weight"].shape[0] == 3
    with pytest.raises(ValueError, match="fits only the full-size CNN14"):
        train_row("panns-32k", d, r, seed=0, spec=table_rows(panns_scale=0.125)["panns-32k"], checkpoint=path)
    d.frontend = "logmel_64"
    with pytest.raises(ValueError, match="needs its own front end 'panns_32k'"):
        train_row("panns-32k", d, r, seed=0, spec=spec)
    with pytest.raises(ValueError, match="row_data=atgnn.own_frontend_data"):
        train_rows(["panns-32k"], d, r, [0], table_rows(panns_scale=1.0))


# ------------------------------------------------------------------ PSLA's own recipe (#17 item 2)
def test_psla_recipe_values_from_its_run_scripts_and_shrunk_budget():
    from audiorepro.papers.atgnn import experiments as E
    base = E.RecipeConfig(seed=3, eval_every_epochs=2)
    r = E.psla_recipe(base, "audioset")
    assert (r.epochs, r.batch_size, r.lr, r.halve_after_epoch, r.balanced) == (60, 100, 1e-3, 35, False)
    assert (r.weight_decay, r.beta1, r.average_last, r.mixup_per_sample) == (5e-7, 0.95, 20, True)
    assert (r.seed, r.eval_every_epochs) == (3, 2) and r.name == "PSLA's own (audioset)"
    cfg = r.train_config()
    assert cfg["betas"] == (0.95, 0.999) and cfg["weight_decay"] == 5e-7
    f = E.psla_recipe(base, "fsd50k", epochs=1, batch_size=2, warmup_iters=1)
    assert (f.epochs, f.average_last, f.halve_after_epoch, f.batch_size, f.lr, f.balanced) == \
        (1, 1, 1, 2, 5e-4, True)
    # the chapter's recipe is unchanged: Adam with PyTorch's defaults, best validation epoch
    plain = E.RecipeConfig().train_config()
    assert plain["betas"] == (0.9, 0.999) and plain["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="unknown dataset"):
        E.psla_recipe(base, "esc50")


def test_weight_average_is_the_mean_of_the_last_epochs_and_survives_a_resume(tmp_path):
    from types import SimpleNamespace

    from audiorepro.papers.atgnn.experiments import WEIGHT_AVERAGE_FILE, WeightAverage
    model = torch.nn.Linear(2, 1)
    avg = WeightAverage(epochs=4, last=2, run_dir=tmp_path)
    for epoch, w in zip(range(1, 5), (1.0, 2.0, 4.0, 10.0)):
        with torch.no_grad():
            model.weight.fill_(w)
            model.bias.fill_(-w)
        if epoch == 4:     # a resumed run reads epoch 3's running sum back from the run folder
            avg = WeightAverage(epochs=4, last=2, run_dir=tmp_path)
            assert avg.state["epochs"] == [3]
        avg(SimpleNamespace(epoch=epoch, model=model))
    assert (tmp_path / WEIGHT_AVERAGE_FILE).is_file() and avg.complete
    assert "epochs 3-4" in avg.apply(model)
    assert torch.allclose(model.weight, torch.full((1, 2), 7.0))     # (4 + 10) / 2
    assert torch.allclose(model.bias, torch.tensor([-7.0]))
    # the same run trained again from scratch: the stored sum is replaced, not added to
    again = WeightAverage(epochs=4, last=2, run_dir=tmp_path)
    for epoch in (3, 4):
        with torch.no_grad():
            model.weight.fill_(1.0)
        again(SimpleNamespace(epoch=epoch, model=model))
    again.apply(model)
    assert torch.allclose(model.weight, torch.ones(1, 2))
    gap = WeightAverage(epochs=4, last=3, run_dir=tmp_path / "other")
    (tmp_path / "other").mkdir()
    with pytest.raises(RuntimeError, match="interrupted"):
        gap(SimpleNamespace(epoch=3, model=model))                    # epoch 2 was never added
    with pytest.raises(ValueError, match="last"):
        WeightAverage(epochs=2, last=3)


def test_train_rows_gives_the_psla_row_its_own_recipe_and_records_it(monkeypatch):
    from audiorepro.papers.atgnn import experiments as E
    seen = {}

    def fake_row(name, data, recipe, seed, **kw):
        seen[name] = recipe
        return {"model": name, "seed": seed}
    monkeypatch.setattr(E, "train_row", fake_row)
    base = E.RecipeConfig(epochs=2)
    own = {"psla": E.psla_recipe(base, "audioset", epochs=2)}
    E.train_rows(["pyr-tiny", "psla"], None, base, [0], checkpoints={}, recipes=own)
    assert seen["pyr-tiny"] is base and seen["psla"].name == "PSLA's own (audioset)"
    with pytest.raises(KeyError, match="not in models"):
        E.train_rows(["pyr-tiny"], None, base, [0], recipes=own)


def test_train_tagger_keeps_the_average_of_the_last_epochs_also_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    from audiorepro.papers.atgnn import experiments as E
    data = _toy_data(n=(8, 4, 4))
    recipe = E.RecipeConfig(epochs=3, batch_size=4, warmup_iters=1, halve_after_epoch=3,
                            balanced=False, mixup_prob=0.0, average_last=2, scale_masks=True)
    seen = []

    def snapshot(trainer):            # the weights after every epoch, beside the averaging
        seen.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
    real_fit = E.fit
    monkeypatch.setattr(E, "fit", lambda *a, callbacks=(), **k: real_fit(*a, callbacks=[snapshot, *callbacks], **k))
    run_dir = tmp_path / "run"
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 8, 2))
    res = E.train_tagger(model, data, recipe, run_dir=run_dir, device="cpu")
    assert len(seen) == 3 and not res.from_cache
    want = (seen[1]["1.weight"] + seen[2]["1.weight"]) / 2          # epochs 2 and 3
    assert torch.allclose(res.model.state_dict()["1.weight"], want, atol=1e-6)
    assert not torch.allclose(want, seen[2]["1.weight"])             # not the last epoch's
    again = E.train_tagger(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 8, 2)),
                           data, recipe, run_dir=run_dir, device="cpu")
    assert again.from_cache and len(seen) == 3
    assert torch.allclose(again.model.state_dict()["1.weight"], want, atol=1e-6)


def test_select_lr_chooses_on_validation_one_rate_per_group(monkeypatch):
    """One rate for the ATGNN rows, chosen on their first -MLG row with the book's defaults for
    the ablated settings; one per baseline; the highest validation mAP wins, a tie goes to the
    smaller rate; the test split is never read."""
    from types import SimpleNamespace
    from audiorepro.papers.atgnn import experiments as E
    valid = {("pyr-tiny", 5e-4): 0.2, ("pyr-tiny", 1e-3): 0.4, ("pyr-tiny", 2e-3): 0.4,
             ("panns_cnn14_16k", 5e-4): 0.3, ("panns_cnn14_16k", 1e-3): 0.1, ("panns_cnn14_16k", 2e-3): 0.2}
    calls = []

    def fake_fit_row(data, recipe, seed, spec, device="auto", amp=False, checkpoint=None):
        calls.append((spec[0], dict(spec[1]), recipe.lr, recipe.mixup_per_sample, seed))
        return SimpleNamespace(best_metrics={"mAP": valid[(spec[0], recipe.lr)], "epoch": 2}), "random"

    def no_test(*a, **k):
        raise AssertionError("select_lr read the test split")
    monkeypatch.setattr(E, "fit_row", fake_fit_row)
    monkeypatch.setattr(E, "predict_tagging", no_test)
    rows = E.table_rows(drop_path=0.1)
    recipe = RecipeConfig(epochs=2, mixup_per_sample=True, lr=5e-4)
    choice = E.select_lr(["pyr-tiny", "pyr-tiny (-MLG)", "panns"], _toy_data(), recipe, [2e-3, 5e-4, 1e-3], rows)
    assert choice.lr == {"pyr-tiny": 1e-3, "pyr-tiny (-MLG)": 1e-3, "panns": 5e-4}
    assert {c[0] for c in calls} == {"pyr-tiny", "panns_cnn14_16k"} and len(calls) == 6
    assert all(kw == {"use_mlg": False} for a, kw, *_ in calls if a == "pyr-tiny")   # drop path left out
    assert not any(c[3] for c in calls) and {c[4] for c in calls} == {0}
    assert choice.table["chosen"].sum() == 2 and len(choice.table) == 6
    own = choice.recipes(recipe)
    assert own["panns"].lr == 5e-4 and own["pyr-tiny"].lr == 1e-3 and own["panns"].mixup_per_sample
    assert "pyr-tiny (-MLG) 0.001" in choice.text() and "panns 0.0005" in choice.text()
    with pytest.raises(ValueError, match="lr_grid"):
        E.select_lr(["panns"], _toy_data(), recipe, [], rows)


def test_select_lr_run_of_the_chosen_rate_is_the_rows_run(tmp_path, monkeypatch):
    from audiorepro.papers.atgnn import select_lr, train_row
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    torch.set_num_threads(1)
    d = _toy_data(n=(8, 4, 4), frames=32, mels=32, classes=4)
    r = RecipeConfig(epochs=1, batch_size=4, warmup_iters=1)
    choice = select_lr(["pyr-tiny (-MLG)"], d, r, [5e-4, 1e-3])
    lr = choice.lr["pyr-tiny (-MLG)"]
    best = choice.table.loc[choice.table["valid mAP"].idxmax(), "lr"]
    assert lr == best
    assert train_row("pyr-tiny (-MLG)", d, choice.recipes(r)["pyr-tiny (-MLG)"], seed=0)["result"].from_cache


def test_train_rows_one_seed_and_k_sweep_mlg_seeds_train_what_they_say(monkeypatch):
    from audiorepro.papers.atgnn import experiments as E
    seen = []

    def fake_train_row(name, data, recipe, seed, spec=None, device="auto", amp=False, checkpoint=None):
        seen.append((name, seed, recipe.lr))
        return {"model": name, "seed": seed}
    monkeypatch.setattr(E, "train_row", fake_train_row)
    r = RecipeConfig(lr=5e-4)
    E.train_rows(["pyr-tiny"], None, r, [0, 1, 2], one_seed=["pyr-tiny (-MLG)"],
                 recipes={"pyr-tiny (-MLG)": RecipeConfig(lr=1e-3)})
    assert seen == [("pyr-tiny", 0, 5e-4), ("pyr-tiny", 1, 5e-4), ("pyr-tiny", 2, 5e-4),
                    ("pyr-tiny (-MLG)", 0, 1e-3)]
    seen.clear()
    runs = E.k_sweep([9, 20], [0, 1], None, r, mlg_rows=True, mlg_seeds=[0])
    assert seen == [("k=9", 0, 5e-4), ("k=9", 1, 5e-4), ("k=20", 0, 5e-4), ("k=20", 1, 5e-4),
                    ("k=9 (+MLG)", 0, 5e-4), ("k=20 (+MLG)", 0, 5e-4)]
    assert list(runs["MLG"]) == [False] * 4 + [True] * 2
    seen.clear()
    E.k_sweep([9, 12, 20], [0], None, r, mlg_rows=True, mlg_ks=[9, 20])
    assert [n for n, *_ in seen] == ["k=9", "k=12", "k=20", "k=9 (+MLG)", "k=20 (+MLG)"]


def test_ablation_table_known_truth():
    """Identical runs: every change 0 with a zero-width interval; an ablation whose k = 20 scores
    are the targets themselves: that row's change and the spread's change are positive and their
    intervals exclude 0."""
    from audiorepro.papers.atgnn import ablation_table
    from audiorepro.results import tagging_items
    rng = np.random.default_rng(0)
    n, c = 60, 4
    targets = (rng.random((n, c)) < 0.3).astype(float)
    targets[0] = 1.0
    ids = [f"clip{i}" for i in range(n)]

    def runs(perfect_k20: bool) -> pd.DataFrame:
        lines = []
        for k in (9, 20):
            for seed in (0, 1):
                g = np.random.default_rng(100 * k + seed)
                scores = targets.copy() if (perfect_k20 and k == 20) else g.random((n, c))
                items = tagging_items(ids, scores, targets)
                from audiorepro.metrics import tagging_metrics
                lines.append({"k": k, "MLG": False, "seed": seed, "items": items,
                              "test mAP": float(tagging_metrics(targets, scores)["mAP"])})
        return pd.DataFrame(lines)
    main = runs(False)
    same = ablation_table(main, main, n_boot=200)
    assert list(same["row"][:2]) == ["k=9", "k=20"] and same["row"].iloc[2].startswith("spread over k")
    assert (same["ablated - main"] == 0).all() and (same["95 % interval"] == "[+0.000, +0.000]").all()
    better = ablation_table(runs(True), main, n_boot=200)
    row20, spread = better.iloc[1], better.iloc[2]
    assert row20["ablated mAP"] == pytest.approx(1.0) and row20["ablated - main"] > 0.3
    for r in (row20, spread):
        lo = float(r["95 % interval"].strip("[]").split(",")[0])
        assert lo > 0
    assert better.iloc[0]["ablated - main"] == 0 and (better["seeds"] == 2).all() and (better["items"] == n).all()
