"""ATGNN chapter experiments: recipe, label attention, clip-table data, baselines, seed verdicts, benchmark file."""
from __future__ import annotations

import numpy as np
import torch

from audiorepro.papers.atgnn import RecipeConfig, label_attention, make_batch_fn
from audiorepro.papers.atgnn.model import build_atgnn


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
    assert "clip table tiny.csv (3 classes), kaldi_fbank_128" in d.description
    pooled = tagging_data(clip_table=tab, data_root=tmp_path / "ds", frames=16, clip_seconds=1.0)
    assert pooled.x_valid.shape == (1, 16, 128)


def test_tagging_data_names_bad_paths(tmp_path):
    import pytest
    from audiorepro.papers.atgnn import tagging_data
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        tagging_data(clip_table=tmp_path / "nope.csv")
    tab = _write_tiny_table(tmp_path / "ds")
    with pytest.raises(FileNotFoundError, match="data_root"):
        tagging_data(clip_table=tab, data_root=tmp_path / "missing")
    with pytest.raises(ValueError, match="time_mode"):
        from audiorepro.papers.atgnn.experiments import _fit_frames
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


def test_compare_seeds_outcomes():
    from audiorepro.papers.atgnn import compare_seeds
    # paired differences +0.10 and +0.12, spread max(std) = 0.0141: clearly better
    c = compare_seeds(_runs({"a": [0.30, 0.32], "b": [0.20, 0.20]}), "a", "b")
    assert c.outcome == "better" and c.verdict == "reproduced"
    assert np.allclose(c.diffs, [0.10, 0.12]) and abs(c.mean_diff - 0.11) < 1e-12
    # mirror case
    c = compare_seeds(_runs({"a": [0.20, 0.20], "b": [0.30, 0.32]}), "a", "b")
    assert c.outcome == "reversed" and c.verdict == "not reproduced"
    # same sign but mean difference 0.01 < seed std 0.0707: inconclusive
    c = compare_seeds(_runs({"a": [0.21, 0.31], "b": [0.20, 0.30]}), "a", "b")
    assert c.outcome == "inconclusive" and "inconclusive at this scale" in c.evidence
    # sign flips across seeds
    assert compare_seeds(_runs({"a": [0.3, 0.1], "b": [0.2, 0.2]}), "a", "b").outcome == "inconclusive"
    # one seed can never decide
    assert compare_seeds(_runs({"a": [0.9], "b": [0.1]}), "a", "b").outcome == "inconclusive"


def test_run_dir_depends_on_everything_that_defines_a_run(tmp_path, monkeypatch):
    from audiorepro.papers.atgnn import TaggingData, run_dir_for
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    z = torch.zeros(2, 16, 8)
    d = TaggingData(z, z[:, 0, :2], z, z[:, 0, :2], z, z[:, 0, :2], ["a", "b"], "toy")
    r0 = RecipeConfig(seed=0)
    base = run_dir_for("pyr-tiny", {}, d, r0)
    assert base == run_dir_for("pyr-tiny", {}, d, RecipeConfig(seed=0))
    assert base.parent == tmp_path / "cache" / "runs" / "atgnn"
    others = {run_dir_for("pyr-tiny", {"use_mlg": False}, d, r0), run_dir_for("pyr-tiny", {}, d, RecipeConfig(seed=1)),
              run_dir_for("pyr-tiny", {}, d, RecipeConfig(epochs=3)), run_dir_for("iso-tiny", {}, d, r0)}
    assert base not in others and len(others) == 4
    # a change of the model / training source gives a new folder (no stale reload)
    from audiorepro.papers.atgnn import experiments as E
    monkeypatch.setattr(E, "code_digest", lambda: "other-code")
    assert run_dir_for("pyr-tiny", {}, d, r0) != base


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
