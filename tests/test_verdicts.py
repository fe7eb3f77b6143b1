"""Verdicts from a paired bootstrap over per-item outputs: resampled metrics, items stored
beside records, run groups, corrupt records, known-truth decisions and their display."""
from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from audiorepro import metrics as M
from audiorepro import results as R
from audiorepro.results import items as result_items
from audiorepro.results import stats

claims_mod = importlib.import_module("audiorepro.results.claims")   # R.claims is the function


pytestmark = pytest.mark.usefixtures("home")   # every test writes into its own AUDIOREPRO_HOME (conftest)


def _ids(n, prefix="clip"):
    return [f"{prefix}{i:04d}" for i in range(n)]


def _counts(idx, n):
    w = np.zeros((idx.shape[0], n))
    np.add.at(w, (np.arange(idx.shape[0])[:, None], idx), 1)
    return w


# ------------------------------------------------------------------ resampled metrics
def test_resampled_tagging_metrics_equal_the_metric_of_the_resampled_data():
    rng = np.random.default_rng(0)
    n, c, b = 50, 6, 8
    t = (rng.random((n, c)) < 0.25).astype(int)
    t[:, 2] = 0                     # no positive: skipped by both
    t[:, 3] = 1                     # no negative: skipped by AUC
    t[:3, 4], t[3:, 4] = 1, 0       # rare: often absent from a resample
    s = np.round(rng.normal(size=(n, c)) + t, 1)      # rounded: many ties
    idx = rng.integers(0, n, (b, n))
    w = _counts(idx, n)
    got_map = M.weighted_average_precision(t, s, w)
    got_auc = M.weighted_roc_auc(t, s, w)
    for i in range(b):
        assert got_map[i] == pytest.approx(M.mean_average_precision(t[idx[i]], s[idx[i]]), abs=1e-6)
        assert got_auc[i] == pytest.approx(M.macro_roc_auc(t[idx[i]], s[idx[i]]), abs=1e-6)
    ones = np.ones((1, n))
    assert M.weighted_average_precision(t, s, ones)[0] == pytest.approx(M.mean_average_precision(t, s))
    assert M.weighted_mean([1.0, 0.0, 0.5], [[2, 0, 2], [0, 1, 0]]).tolist() == [0.75, 0.0]


def test_resample_counts_draw_n_items_within_groups():
    rng = np.random.default_rng(0)
    groups = np.array(["a"] * 3 + ["b"] * 7)
    w = stats.resample_counts(10, 200, rng, groups)
    assert w.shape == (200, 10) and w.dtype == np.float32
    assert (w[:, :3].sum(axis=1) == 3).all() and (w[:, 3:].sum(axis=1) == 7).all()
    assert 0.9 < w.mean() < 1.1 and (w == 0).any()


def test_metric_registry_recomputes_from_items():
    ranks = np.array([1, 3, 12, 2])
    it = R.retrieval_items(_ids(4), ranks)
    assert R.metric_function("mAP@10").full(it) == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert R.metric_function("R@5").full(it) == pytest.approx(0.75)
    assert R.metric_function("R@20").full(it) == pytest.approx(1.0)
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    cl = R.classification_items(_ids(3), scores, [1, 1, 1])
    assert R.metric_function("accuracy").full(cl) == pytest.approx(2 / 3)
    grouped = R.value_items(_ids(4), [1, 0, 1, 1], groups=["x", "x", "y", "y"])
    assert R.metric_function("mean").full(grouped) == pytest.approx((0.5 + 1.0) / 2)
    assert set(R.METRIC_FUNCTIONS) >= {"mAP", "AUC", "accuracy", "mAP@10", "R@1", "mean"}
    with pytest.raises(R.RegistryError, match="no metric function 'F1'"):
        R.metric_function("F1")


# ------------------------------------------------------------------ items beside records
def test_items_are_stored_beside_the_record_and_load_back(home):
    rng = np.random.default_rng(1)
    t = (rng.random((40, 5)) < 0.3).astype(int)
    t[0] = 1
    s = rng.normal(size=(40, 5)) + t
    m = M.tagging_metrics(t, s)
    path = R.record("atgnn", "table3", {"mAP": m["mAP"], "AUC": m["AUC"], "params": 1000},
                    {"paper_row": "ATGNN-pyr-s"}, "synthetic", "small", "smoke",
                    items=R.tagging_items(_ids(40), s, t))
    rec = json.loads(path.read_text())
    assert rec["items"]["file"] == f"{path.stem}.items.npz"
    assert rec["items"]["metrics"] == {"mAP": {"fn": "mAP", "n": 40}, "AUC": {"fn": "AUC", "n": 40}}
    assert (home / "results" / "records" / rec["items"]["file"]).is_file()
    loaded = R.load_items(path.stem)
    assert set(loaded) == {"mAP", "AUC"} and loaded["mAP"].metric == "mAP"
    assert loaded["mAP"].ids.tolist() == _ids(40)
    assert (loaded["mAP"].targets == t).all()
    assert R.metric_function("mAP").full(loaded["mAP"]) == pytest.approx(m["mAP"], abs=1e-4)
    with np.load(home / "results" / "records" / rec["items"]["file"]) as z:
        assert z["s0.scores"].dtype in (np.float16, np.float32)
    with pytest.raises(R.ItemsMissing, match="no per-item outputs"):
        R.load_items("20000101T000000.000000Z-000000000000")


@pytest.mark.parametrize("items, needle", [
    (lambda: R.value_items(["a", "a"], [1.0, 0.0]), "item id 'a' occurs 2 times"),
    (lambda: R.value_items(["a", "b"], [1.0]), r"values must be \(2,\)"),
    (lambda: R.tagging_items(["a", "b"], [[0.1], [np.nan]], [[1], [0]]), "finite"),
    (lambda: R.retrieval_items(["a", "b"], [0, 3]), "1-based"),
    (lambda: R.value_items(["a", "b"], [1.0, 0.0], metric="F1"), "no metric function 'F1'"),
])
def test_bad_items_are_named(items, needle):
    with pytest.raises(R.RegistryError, match=needle):
        items()


def test_items_must_reproduce_the_recorded_value(home):
    items = R.value_items(_ids(4), [1.0, 0.0, 1.0, 1.0])
    with pytest.raises(R.RegistryError, match="give mean = 0.75 but the record says 0.8"):
        R.record("atgnn", "table3", {"mAP": 0.8}, {"paper_row": "x"}, "synthetic", "small",
                 "smoke", items={"mAP": items})
    with pytest.raises(R.RegistryError, match="does not hold"):
        R.record("atgnn", "table3", {"mAP": 0.75}, {}, "synthetic", "small", "smoke",
                 items={"AUC": items})
    assert not list((home / "results" / "records").glob("*.json")) if \
        (home / "results" / "records").exists() else True


# ------------------------------------------------------------------ known truth
def _record_rows(values_by_row, table="table3", seed=None, group=None, scale="small", **extra):
    for row, vals in values_by_row.items():
        params = {"paper_row": row, **extra}
        if seed is not None:
            params["seed"] = seed
        if group is not None:
            params["run_group"] = group
        vals = np.asarray(vals, dtype=float)
        R.record("atgnn", table, {"mAP": float(vals.mean())}, params, "synthetic", scale, "smoke",
                 items={"mAP": R.value_items(_ids(vals.size), vals)})


PAIR = ("ATGNN-pyr-s", "ATGNN-pyr-s (-MLG)")


def test_identical_rows_are_inconclusive():
    rng = np.random.default_rng(2)
    v = rng.random(300)
    _record_rows({PAIR[0]: v, PAIR[1]: v})
    out = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert out.verdict == "inconclusive" and out.interval == (0.0, 0.0) and out.effect == 0.0


def test_a_large_true_gap_is_reproduced_and_a_reversed_one_is_not():
    rng = np.random.default_rng(3)
    base = rng.random(300)
    _record_rows({PAIR[0]: base + 0.1 + 0.05 * rng.normal(size=300), PAIR[1]: base})
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.verdict == "reproduced" and 0.0 < v.interval[0] < 0.1 < v.interval[1] < 0.2
    _record_rows({PAIR[0]: base, PAIR[1]: base + 0.1 + 0.05 * rng.normal(size=300)})
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.verdict == "not reproduced" and v.interval[1] < 0
    assert v.evidence.startswith("this run mAP: ATGNN-pyr-s")


def test_a_small_gap_at_noise_level_is_inconclusive():
    rng = np.random.default_rng(4)
    base = (rng.random(40) < 0.5).astype(float)
    better = base.copy()
    better[np.flatnonzero(base == 0)[0]] = 1.0                     # one item of 40: +0.025
    _record_rows({PAIR[0]: better, PAIR[1]: base})
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.effect == pytest.approx(0.025) and v.verdict == "inconclusive"


def test_a_verdict_states_the_effect_size_its_test_resolves_beside_the_papers():
    rng = np.random.default_rng(6)
    base = rng.random(300)
    _record_rows({PAIR[0]: base + 0.1 + 0.05 * rng.normal(size=300), PAIR[1]: base})
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k", register=True)
    assert v.resolution == pytest.approx((v.interval[1] - v.interval[0]) / 2)
    pn = R.paper_numbers("atgnn")
    pn = pn[(pn["table"] == "table3") & (pn["column"] == "mAP")].set_index("row")
    factor = R.UNIT_FACTORS[pn.loc[PAIR[0], "unit"]]
    paper_diff = (pn.loc[PAIR[0], "value"] - pn.loc[PAIR[1], "value"]) / factor
    assert v.paper_effect == pytest.approx(paper_diff) and v.pairs[0]["paper_effect"] == v.paper_effect
    size = "resolvable" if abs(paper_diff) > v.resolution else "below the resolution"
    assert f"is {size} of this test" in v.evidence
    row = R.claims_table(["atgnn"]).set_index("claim_id").loc["mlg-helps-fsd50k"]
    assert row["resolution"] == pytest.approx(v.resolution)
    assert row["paper_effect"] == pytest.approx(paper_diff)
    text = R.resolution_text(row)
    assert text.startswith(f"±{v.resolution:.3g}; paper +") and text.endswith(
        "resolvable" if abs(paper_diff) > v.resolution else "too small")
    assert R.resolution_text({"resolution": None}) == ""
    assert R.resolution_text({"resolution": 0.05, "paper_effect": 0.02}) == "±0.05; paper +0.02: too small"


def test_the_95_interval_covers_the_true_difference_90_to_99_percent():
    # 200 simulated test sets: paired accuracy-like outcomes, true difference 0.1
    rng = np.random.default_rng(5)
    n, covered = 200, 0
    for rep in range(200):
        u = rng.random(n)
        a = (u < 0.8).astype(float)             # row A right with probability 0.8
        b = (u < 0.7).astype(float)             # row B right with 0.7, on the easier items
        boot = stats.bootstrap_rows({"A": [stats.Run(None, a.mean(), R.value_items(_ids(n), a))],
                                     "B": [stats.Run(None, b.mean(), R.value_items(_ids(n), b))]},
                                    n_boot=1000, seed=rep)
        lo, hi = stats.percentile_interval(boot.rows["A"] - boot.rows["B"])
        covered += lo <= 0.1 <= hi
    assert 0.90 <= covered / 200 <= 0.99


def test_seeds_are_averaged_and_their_spread_reported():
    rng = np.random.default_rng(6)
    n = 200
    truth = rng.random(n)
    per_seed = {}
    g = R.new_run_group()
    for seed in range(3):
        a = truth + 0.05 + 0.2 * rng.normal(size=n)
        b = truth + 0.2 * rng.normal(size=n)
        per_seed[seed] = a.mean() - b.mean()
        _record_rows({PAIR[0]: a, PAIR[1]: b}, seed=seed, group=g)
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.n_seeds == 3 and v.n_items == n
    assert v.effect == pytest.approx(np.mean(list(per_seed.values())))
    assert v.seed_spread == pytest.approx(np.std(list(per_seed.values()), ddof=1))
    # the seed average is less noisy than one seed: its interval is narrower
    one = R.evaluate_claim("atgnn", "mlg-helps-fsd50k", profile="smoke")
    recs, _ = R.select_records("atgnn", "table3", "mAP", PAIR)
    runs = {row: [r for r in claims_mod._runs(rs, "mAP")[0] if r.seed == "0"] for row, rs in recs.items()}
    boot = stats.bootstrap_rows(runs)
    lo1, hi1 = stats.percentile_interval(boot.rows[PAIR[0]] - boot.rows[PAIR[1]])
    assert one.interval[1] - one.interval[0] < hi1 - lo1
    # the same stored outputs give the same interval: no dependence on the machine or the call
    assert R.evaluate_claim("atgnn", "mlg-helps-fsd50k").interval == v.interval


def test_every_worse_row_must_be_beaten():
    rng = np.random.default_rng(7)
    base = rng.random(300)
    rows = {"Gaussian + Hawkes": base + 0.2, "both Hawkes": base, "both Gaussian": base + 0.2}
    for row, v in rows.items():
        R.record("thgcl", "table2", {"mAP": float(v.mean())}, {"paper_row": row}, "synthetic",
                 "small", "smoke", items={"mAP": R.value_items(_ids(300), v)})
    v = R.evaluate_claim("thgcl", "gauss-hawkes-best")
    assert v.verdict == "inconclusive"                       # one pair identical
    assert [p["verdict"] for p in v.pairs] == ["reproduced", "inconclusive"]
    assert v.effect == 0.0                                   # the pair that decided
    R.record("thgcl", "table2", {"mAP": float((base + 0.3).mean())}, {"paper_row": "both Gaussian"},
             "synthetic", "small", "smoke", items={"mAP": R.value_items(_ids(300), base + 0.3)})
    v = R.evaluate_claim("thgcl", "gauss-hawkes-best")
    assert v.verdict == "not reproduced" and v.effect == pytest.approx(-0.1)
    R.record("thgcl", "table2", {"mAP": float((base + 0.1).mean())}, {"paper_row": "both Gaussian"},
             "synthetic", "small", "smoke", items={"mAP": R.value_items(_ids(300), base + 0.1)})
    v = R.evaluate_claim("thgcl", "gauss-hawkes-best")
    assert v.verdict == "reproduced" and v.effect == pytest.approx(0.1)


def test_unpaired_rows_are_resampled_independently():
    rng = np.random.default_rng(8)
    R.record("atgnn", "table3", {"mAP": 0.5}, {"paper_row": PAIR[0]}, "synthetic", "small",
             "smoke", items={"mAP": R.value_items(_ids(200, "a"), np.r_[np.ones(100), np.zeros(100)])})
    R.record("atgnn", "table3", {"mAP": 0.3}, {"paper_row": PAIR[1]}, "synthetic", "small",
             "smoke", items={"mAP": R.value_items(_ids(200, "b"), np.r_[np.ones(60), np.zeros(140)])})
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.paired is False and "unpaired" in v.evidence and v.verdict == "reproduced"


def test_close_claim_uses_the_papers_band():
    # headline-fsd50k: ATGNN-pyr-med mAP 0.585 in the paper, band: half its gap to AST (0.572)
    # -> 0.585 +- 0.0065 = [0.5785, 0.5915]
    def run(hits, n=4000):
        v = (np.arange(n) < hits).astype(float)
        R.record("atgnn", "table3", {"mAP": v.mean()}, {"paper_row": "ATGNN-pyr-med"},
                 "synthetic", "small", "smoke", items={"mAP": R.value_items(_ids(n), v)})
        return R.evaluate_claim("atgnn", "headline-fsd50k")
    v = run(2340, n=4000)                                        # 0.585 +- 0.015 (n 4000)
    assert v.verdict == "inconclusive"                           # wider than the band
    assert v.reference == pytest.approx([0.5785, 0.5915])
    assert "half the paper's lead over AST (0.013" in v.evidence
    assert run(234_000, n=400_000).verdict == "reproduced"      # 0.585 +- 0.0015
    assert run(229_600, n=400_000).verdict == "not reproduced"  # 0.574: nearer AST's 0.572
    assert run(1200).verdict == "not reproduced"                 # 0.30
    assert run(22, n=40).verdict == "inconclusive"               # 0.55 on 40 items: too wide


def test_close_claim_band_printed_precision_and_refused_tolerances(monkeypatch):
    # pyr-s-no-mlg-params: 27.3 M printed (column decimals 1) -> [27.25, 27.35] M; an exact
    # count has no interval width
    for count, verdict in ((27_300_000, "reproduced"), (27_340_000, "reproduced"),
                           (27_240_000, "not reproduced"), (27_360_000, "not reproduced")):
        R.record("atgnn", "table2", {"params": count}, {"paper_row": "ATGNN-pyr-s (-MLG)"},
                 "synthetic", "small", "smoke")
        v = R.evaluate_claim("atgnn", "pyr-s-no-mlg-params")
        assert v.verdict == verdict, (count, v.evidence)
    assert v.reference == pytest.approx([27.25e6, 27.35e6]) and "printed precision" in v.evidence
    test = {"kind": "close", "table": "table2", "row": "ATGNN-pyr-s (-MLG)", "metric": "params",
            "rel_tol": 0.05}
    monkeypatch.setattr(claims_mod, "_claim", lambda paper, cid: {"id": cid, "text": "t", "test": test})
    with pytest.raises(R.RegistryError, match="band: printed"):
        R.evaluate_claim("atgnn", "made-up-close")
    test.pop("rel_tol")
    test["band"] = {"gap_to": "ATGNN-pyr-s (-MLG)"}
    with pytest.raises(R.RegistryError, match="zero"):
        R.evaluate_claim("atgnn", "made-up-close")


def test_every_shipped_close_claim_states_a_band_the_paper_sets():
    for paper in R.paper_names():
        for c in R.claims(paper):
            t = c.get("test") or {}
            assert "rel_tol" not in t, (paper, c["id"])
            if t.get("kind") == "close":
                assert t.get("band") == "printed" or "gap_to" in (t.get("band") or {}), (paper, c["id"])
                pn = R.paper_numbers(paper)
                rows = [t["row"]] + ([t["band"]["gap_to"]] if isinstance(t["band"], dict) else [])
                for row in rows:      # every row the band reads has the paper's number
                    hit = pn[(pn["table"] == t["table"]) & (pn["row"] == row) & (pn["column"] == t["metric"])]
                    assert len(hit) == 1, (paper, c["id"], row)


def test_threshold_claim(monkeypatch):
    test = {"kind": "threshold", "table": "table3", "row": "ATGNN-pyr-s", "metric": "mAP",
            "op": ">", "value": 0.2}
    monkeypatch.setattr(claims_mod, "_claim", lambda paper, cid: {"id": cid, "text": "t", "test": test})
    _record_rows({"ATGNN-pyr-s": (np.arange(1000) < 500).astype(float)})
    v = R.evaluate_claim("atgnn", "made-up-threshold")
    assert v.verdict == "reproduced" and v.interval[0] > 0.2
    test["value"] = 0.6
    assert R.evaluate_claim("atgnn", "made-up-threshold").verdict == "not reproduced"
    test["value"], test["op"] = 0.5, "<"
    assert R.evaluate_claim("atgnn", "made-up-threshold").verdict == "inconclusive"


def test_decision_rules():
    assert stats.side_of(0.01, 0.05, 0.0) == "reproduced"
    assert stats.side_of(-0.05, -0.01, 0.0) == "not reproduced"
    assert stats.side_of(-0.01, 0.05, 0.0) == "inconclusive"
    assert stats.side_of(0.0, 0.05, 0.0) == "inconclusive"            # touching
    assert stats.side_of(0.001, 0.004, 0.005, claim_above=False) == "reproduced"
    assert stats.in_band(0.56, 0.60, 0.55, 0.61) == "reproduced"
    assert stats.in_band(0.40, 0.50, 0.55, 0.61) == "not reproduced"
    assert stats.in_band(0.50, 0.58, 0.55, 0.61) == "inconclusive"
    assert stats.combine(["reproduced", "inconclusive", "not reproduced"]) == "not reproduced"
    assert stats.combine(["reproduced", "inconclusive"]) == "inconclusive"
    assert stats.seed_spread({"0": 1.0, "1": 3.0}, {"0": 0.0, "1": 0.0}) == pytest.approx(2 ** 0.5)
    assert stats.seed_spread({"0": 1.0}) is None


# ------------------------------------------------------------------ which records
def test_an_older_grid_row_is_not_used():
    rng = np.random.default_rng(9)
    base = rng.random(300)
    old = R.new_run_group()
    _record_rows({PAIR[0]: base + 0.2, PAIR[1]: base}, group=old)             # old grid: both
    _record_rows({PAIR[0]: base + 0.1}, group=R.new_run_group())               # new grid: one row
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.verdict == "not yet measured" and "ATGNN-pyr-s (-MLG)" in v.evidence
    assert v.values == {PAIR[0]: pytest.approx((base + 0.1).mean())}         # old rows unused
    # records without a run group: the newest record's profile / dataset / scale decides
    _record_rows({PAIR[0]: base + 0.2, PAIR[1]: base}, scale="small")
    _record_rows({PAIR[0]: base}, scale="medium")
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.verdict == "not yet measured" and v.selection == "newest record per row and seed"
    _record_rows({PAIR[1]: base + 0.3}, scale="medium")
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.verdict == "not reproduced" and v.scale == "medium"


def test_a_row_a_newer_execution_of_its_notebook_dropped_is_not_used(monkeypatch):
    # records without run groups fall back to "newest record per row and seed": without the
    # execution stamp, the old execution's (-MLG) row would pair with the new (+MLG) row
    from audiorepro.results.records import EXECUTION_ENV, NOTEBOOK_ENV
    rng = np.random.default_rng(4)
    base = rng.random(300)
    monkeypatch.setenv(NOTEBOOK_ENV, "atgnn/03_table3")
    monkeypatch.setenv(EXECUTION_ENV, "run-1")
    _record_rows({PAIR[0]: base + 0.2, PAIR[1]: base})
    assert R.evaluate_claim("atgnn", "mlg-helps-fsd50k").verdict == "reproduced"
    from audiorepro.results.records import mark_execution_complete
    mark_execution_complete({"notebook": "atgnn/03_table3", "id": "run-1"})
    monkeypatch.setenv(EXECUTION_ENV, "run-2")
    _record_rows({PAIR[0]: base + 0.2})
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.verdict == "not yet measured" and PAIR[1] in v.evidence


def test_a_missing_items_file_falls_back_to_inconclusive(home):
    rng = np.random.default_rng(10)
    base = rng.random(300)
    _record_rows({PAIR[0]: base + 0.5, PAIR[1]: base})
    next((home / "results" / "records").glob("*.items.npz")).unlink()
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k", register=True)
    assert v.verdict == "inconclusive" and v.interval is None and v.n_items is None
    assert "no per-item outputs for rows" in v.evidence and "items file missing" in v.evidence
    row = R.claims_table(["atgnn"]).set_index("claim_id").loc["mlg-helps-fsd50k"]
    assert row["verdict"] == "inconclusive" and np.isnan(row["lo"])


# ------------------------------------------------------------------ corrupt records
def test_corrupt_records_are_skipped_with_a_warning_naming_them(home):
    rng = np.random.default_rng(11)
    base = rng.random(100)
    _record_rows({PAIR[0]: base + 0.5, PAIR[1]: base})
    folder = home / "results" / "records"
    good = json.loads(next(folder.glob("*.json")).read_text())
    (folder / "binary.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff\x00")
    (folder / "no_id.json").write_text(json.dumps({k: v for k, v in good.items() if k != "record_id"}))
    (folder / "string.json").write_text(json.dumps({**good, "record_id": "s", "metrics": {"mAP": "0.3"}}))
    (folder / "nan.json").write_text(json.dumps({**good, "record_id": "n"}).replace(
        f'"mAP": {good["metrics"]["mAP"]}', '"mAP": NaN'))
    with pytest.warns(R.CorruptRecordWarning) as caught:
        v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k", register=True)
        table = R.claims_table()
    assert v.verdict == "reproduced" and len(table) > 0
    named = " ".join(str(w.message) for w in caught)
    for name in ("binary.json", "no_id.json", "string.json", "nan.json"):
        assert name in named
    bad = R.corrupt_records().set_index("file")["problem"]
    assert sorted(bad.index) == ["binary.json", "nan.json", "no_id.json", "string.json"]
    assert "record_id" in bad["no_id.json"] and "not a number" in bad["string.json"]
    assert "nan" in bad["nan.json"] and "unreadable" in bad["binary.json"]


# ------------------------------------------------------------------ stored verdicts, display
def test_register_verdict_stores_structured_fields(home):
    path = R.register_verdict("bow", "masking-helps", "inconclusive", "x " * 100, "synthetic",
                              "small", "book", effect=0.01, interval=(-0.02, 0.04), n_items=500,
                              n_seeds=3, seed_spread=0.005, kind="comparison", metric="mAP_1s",
                              notebook=str(home / "book" / "bow" / "03_fig3_masking.ipynb"))
    rec = json.loads(path.read_text())
    assert rec["interval"] == [-0.02, 0.04] and rec["n_items"] == 500 and rec["n_seeds"] == 3
    assert rec["notebook"] == "bow/03_fig3_masking" and str(home) not in path.read_text()
    with pytest.raises(R.RegistryError, match="lo > hi"):
        R.register_verdict("bow", "masking-helps", "inconclusive", "x", "s", "s", "book",
                           interval=(0.1, 0.0))


def test_chapter_verdicts_one_line_per_claim_with_four_colours(home):
    ids = [c["id"] for c in R.claims("bow")]
    for cid, verdict in zip(ids[1:4], ("reproduced", "not reproduced", "inconclusive")):
        R.register_verdict("bow", cid, verdict, f"evidence of {cid} " + "word " * 60, "synthetic",
                           "small", "book", effect=0.02, interval=(0.01, 0.03), n_items=200,
                           n_seeds=3, kind="comparison", metric="mAP_1s",
                           notebook="bow/02_fig2_grid")
    styler = R.chapter_verdicts("bow", profile="book")
    data = styler.data
    assert list(data.index) == ids
    assert data.loc[ids[1], "effect [95% interval]"] == "Δ mAP_1s +0.02 [+0.01, +0.03]"
    assert data.loc[ids[1], "n items"] == 200 and data.loc[ids[1], "n seeds"] == 3
    html = styler.to_html()
    for colour in R.VERDICT_COLOURS.values():
        assert f"color: {colour}" in html
    assert len(set(R.VERDICT_COLOURS.values())) == 4
    assert "<details><summary>" in html and "href='../bow/02_fig2_grid.html'" in html
    summary = html.split("<summary>")[1].split("</summary>")[0]
    assert len(summary) <= 120
    assert str(home) not in html


def test_verdict_plot_has_one_row_per_claim():
    import matplotlib
    matplotlib.use("Agg")
    rng = np.random.default_rng(12)
    base = rng.random(200)
    _record_rows({PAIR[0]: base + 0.2, PAIR[1]: base})
    R.evaluate_claim("atgnn", "mlg-helps-fsd50k", register=True)
    fig = R.verdict_plot("atgnn")
    ax = fig.axes[0]
    assert len(ax.get_yticks()) == len(R.claims("atgnn"))
    xs = [x for line in ax.lines for x in line.get_xdata()]
    assert max(xs) == pytest.approx(0.2, abs=0.05)            # the reproduced effect, right of 0
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_spread_of_equal_rows_below_the_noise_floor_is_inconclusive_not_refuted(monkeypatch):
    """Max - min of five noisy rows is biased upward: rows equal in truth, tested on 200 items,
    must not refute a 0.005 bound; a true spread far above the noise floor does."""
    rows = [f"k={k}" for k in (9, 12, 15, 18, 20)]
    test = {"kind": "spread", "table": "table3", "rows": rows, "metric": "mAP", "max_spread": 0.005}
    monkeypatch.setattr(claims_mod, "_claim", lambda paper, cid: {"id": cid, "text": "t", "test": test})
    rng = np.random.default_rng(11)
    truth = rng.random(200)
    _record_rows({r: truth + 0.15 * rng.normal(size=200) for r in rows})
    v = R.evaluate_claim("atgnn", "made-up-spread")
    assert v.effect > 0.005 and v.verdict == "inconclusive" and "noise floor" in v.evidence
    _record_rows({r: np.clip(truth + 0.2 * i + 0.001 * rng.normal(size=200), 0, 5)
                  for i, r in enumerate(rows)}, group="wide")
    assert R.evaluate_claim("atgnn", "made-up-spread").verdict == "not reproduced"


def test_summary_lines_cover_every_paper_with_details_on_demand(home):
    R.register_verdict("bow", "masking-helps", "reproduced", "this run: 0.31 vs 0.27 " + "w " * 80,
                       "synthetic", "small", "book", effect=0.04, interval=(0.01, 0.07),
                       n_items=400, n_seeds=3, kind="comparison", metric="mAP_1s",
                       notebook="bow/03_fig3_masking")
    styler = R.chapter_verdicts(None, profile="book")
    data = styler.data
    expected = [(p, c["id"]) for p in R.paper_names() for c in R.claims(p)]
    assert list(data.index) == expected                   # one line per claim of every paper
    assert data.loc[("bow", "masking-helps"), "verdict"] == "reproduced"
    assert data.loc[("bow", "masking-helps"), "evidence"].startswith("this run: 0.31 vs 0.27")
    html = styler.to_html()
    line = html.split("href='../bow/03_fig3_masking.html'")[0].rsplit("<tr>", 1)[1]
    summary = line.split("<summary>")[1].split("</summary>")[0]
    claim = data.loc[("bow", "masking-helps"), "claim"]
    assert len(summary) <= claims_mod.CLAIM_CHARS and claim.startswith(summary.rstrip("…"))
    body = line.split("</summary>")[1]
    assert "0.31 vs 0.27" in body and "claim id: masking-helps" in body and "profile book" in body
    assert body.count(claim[:40]) == (1 if len(claim) > claims_mod.CLAIM_CHARS else 0)
    assert ">mAP_1s<" not in html and "+0.04 [+0.01, +0.07]" in html
    assert html.count(">bow</th>") == 1                   # the paper once per group (rowspan)
    assert str(home) not in html
    with pytest.raises(KeyError, match="unknown paper 'bows'"):
        R.chapter_verdicts(["bow", "bows"])


def test_verdict_plot_puts_relative_margins_in_their_own_panel(monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(5)
    base = rng.random(200)
    _record_rows({PAIR[0]: base + 0.2, PAIR[1]: base})
    R.evaluate_claim("atgnn", "mlg-helps-fsd50k", register=True)
    R.record("atgnn", "table2", {"params": 13_650_000}, {"paper_row": "ATGNN-pyr-s (-MLG)"},
             "synthetic", "small", "smoke")                        # half of the paper's 27.3 M
    R.evaluate_claim("atgnn", "pyr-s-no-mlg-params", register=True)
    fig = R.verdict_plot("atgnn")
    main, rel = fig.axes[:2]
    assert len(main.get_yticks()) == len(R.claims("atgnn"))
    xs_main = [x for line in main.lines for x in line.get_xdata()]
    xs_rel = [x for line in rel.lines for x in line.get_xdata()]
    # closeness margin: band half-width - |relative difference| = 0.05 / 27.3 - 0.5 (printed 27.3 M)
    assert min(xs_rel) == pytest.approx(0.05 / 27.3 - 0.5, abs=1e-6)
    assert min(xs_main) > -0.01 and max(xs_main) == pytest.approx(0.2, abs=0.05)
    plt.close(fig)
    fig, ax = plt.subplots()
    assert R.verdict_plot("atgnn", ax=ax) is fig and len(fig.axes) == 1    # one panel given
    plt.close(fig)


def test_decide_claims_of_a_notebook_registers_each_and_uses_custom_deciders(home):
    rng = np.random.default_rng(5)
    base = rng.random(200)
    _record_rows({PAIR[0]: base + 0.2, PAIR[1]: base}, seed=0, group="g1")
    custom = {"headline-fsd50k": lambda: R.Verdict("headline-fsd50k", "not yet measured", "needs FSD50K"),
              "skipped": lambda: None}
    table = R.decide_claims("atgnn", "smoke", "book/atgnn/03_tables_2_3.ipynb",
                            {"03_tables_2_3": ["mlg-helps-fsd50k", "headline-fsd50k", "skipped"]},
                            custom=custom)
    assert list(table["claim"]) == ["mlg-helps-fsd50k", "headline-fsd50k"]      # None: left out
    first = table.iloc[0]
    assert first["verdict"] == "reproduced" and first["items"] == 200 and first["seeds"] == 1
    assert first["effect"] == pytest.approx(0.2) and first["lo"] <= 0.2 <= first["hi"]
    assert first["interval width"] == pytest.approx(first["hi"] - first["lo"])
    registered = R.load_claim_records()
    assert set(registered["claim_id"]) >= {"mlg-helps-fsd50k"}
    assert set(registered.loc[registered["claim_id"] == "mlg-helps-fsd50k", "notebook"]) == {"atgnn/03_tables_2_3"}
    with pytest.raises(KeyError, match="decides no claim"):
        R.decide_claims("atgnn", "smoke", "99_nothing", {"03_tables_2_3": []})


def test_paper_rows_name_the_paper_row_behind_a_row_of_this_run():
    # fusion's verdict compares the validation-chosen fusion (VGGish-Fusion); the paper's number
    # for it is its fixed-layer row VGGish-Fusion#10#15 (SPCV2: 14.3 -> 91.4 %, +77.1 points)
    rng = np.random.default_rng(8)
    base = (rng.random(200) < 0.3).astype(float)
    fused = np.maximum(base, (rng.random(200) < 0.5).astype(float))
    for row, vals in (("VGGish", base), ("VGGish-Fusion", fused)):
        R.record("fusion", "table3", {"SPCV2": float(vals.mean())}, {"paper_row": row},
                 "synthetic", "small", "smoke",
                 items={"SPCV2": R.value_items(_ids(vals.size), vals)})
    v = R.evaluate_claim("fusion", "vggish-fusion-spcv2")
    assert v.verdict == "reproduced" and v.effect == pytest.approx(fused.mean() - base.mean())
    assert v.paper_effect == pytest.approx(0.771)
    assert "VGGish-Fusion#10#15" not in v.evidence.split(";")[0]      # not a row of this run


def test_a_handful_of_items_cannot_decide_a_verdict():
    # 5 items, the better row right on every one: the interval [+1, +1] lies above zero, but a
    # bootstrap of 5 items says nothing reliable, so the verdict is inconclusive (and says why)
    _record_rows({PAIR[0]: np.ones(5), PAIR[1]: np.zeros(5)})
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.interval == (1.0, 1.0) and v.verdict == "inconclusive"
    assert "only 5 test items" in v.evidence and v.resolution is None
    _record_rows({PAIR[0]: np.ones(stats.MIN_ITEMS), PAIR[1]: np.zeros(stats.MIN_ITEMS)})
    assert R.evaluate_claim("atgnn", "mlg-helps-fsd50k").verdict == "reproduced"


def test_a_caveat_makes_a_decided_verdict_inconclusive_and_says_why():
    rng = np.random.default_rng(9)
    base = rng.random(300)
    _record_rows({PAIR[0]: base + 0.1 + 0.05 * rng.normal(size=300), PAIR[1]: base})
    assert R.evaluate_claim("atgnn", "mlg-helps-fsd50k").verdict == "reproduced"
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k", caveats=["the data have a shortcut"])
    assert v.verdict == "inconclusive" and v.interval[0] > 0
    assert v.evidence.endswith("inconclusive rather than reproduced; the data have a shortcut")


# ------------------------------------------------------------------ chance levels
def test_chance_level_of_each_item_kind_by_hand():
    # class 0: 1 positive of 4 -> E[1/rank] = (1 + 1/2 + 1/3 + 1/4) / 4 = 25/48; class 1: 2 of 4
    # -> the mean AP over the 6 placements (1, 5/6, 3/4, 7/12, 1/2, 5/12) = 49/72
    targets = np.array([[1, 0], [0, 1], [0, 1], [0, 0]])
    tag = R.tagging_items(_ids(4), np.zeros((4, 2)), targets)
    tag.metric = "mAP"
    assert R.chance_level(tag) == pytest.approx((25 / 48 + 49 / 72) / 2)
    tag.metric = "AUC"
    assert R.chance_level(tag) == 0.5
    labels = np.array([0, 0, 1, 2, 0])
    acc = R.classification_items(_ids(5), np.zeros((5, 3)), labels)
    acc.metric = "accuracy"
    assert R.chance_level(acc) == pytest.approx(3 / 5)            # always answer label 0
    grouped = R.classification_items(_ids(5), np.zeros((5, 3)), labels,
                                     groups=["a", "a", "a", "b", "b"])
    grouped.metric = "accuracy"
    assert R.chance_level(grouped) == pytest.approx((2 / 3 + 1 / 2) / 2)   # mean over groups
    ranks = R.retrieval_items(_ids(3), [1, 4, 9])
    ranks.metric = "mAP@10"
    assert R.chance_level(ranks) is None                          # the gallery size is unknown
    assert R.chance_level(R.value_items(_ids(3), [0.1, 0.2, 0.3])) is None
    # per-item correctness with each item's class: always answering the majority class
    assert R.chance_level(R.value_items(_ids(5), [1, 0, 1, 1, 0], labels=[2, 2, 0, 2, 1])) \
        == pytest.approx(3 / 5)
    # two tasks (groups): the mean of 3/4 and 1/2
    grouped = R.value_items(_ids(6), [1, 1, 0, 1, 0, 1], groups=list("aaaabb"),
                            labels=[0, 0, 0, 1, 0, 1])
    assert R.chance_level(grouped) == pytest.approx((3 / 4 + 1 / 2) / 2)
    with pytest.raises(R.RegistryError, match="labels need scores"):       # nothing to score
        result_items._check(result_items.ItemSet(_ids(2), labels=np.array([0, 1])))


def _record_tagging(scores_by_row, targets, table="table3"):
    for row, scores in scores_by_row.items():
        value = float(M.mean_average_precision(targets, scores))
        R.record("atgnn", table, {"mAP": value}, {"paper_row": row}, "synthetic", "small", "smoke",
                 items={"mAP": R.tagging_items(_ids(len(targets)), scores, targets)})


def test_a_row_at_chance_decides_no_comparison_on_either_side(home):
    rng = np.random.default_rng(7)
    targets = (rng.random((300, 5)) < 0.2).astype(int)
    chance = M.random_ranking_map(targets)
    informative = targets + rng.normal(scale=0.8, size=targets.shape)
    # the paper's better row ranks at random, the other learned: a loss that says nothing
    _record_tagging({PAIR[0]: rng.random(targets.shape), PAIR[1]: informative}, targets)
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k", register=True)
    assert v.interval[1] < 0                                      # it did lose
    assert v.verdict == "inconclusive"
    assert f"not measurably above chance: {PAIR[0]} [" in v.evidence
    assert v.chance == pytest.approx({PAIR[0]: chance, PAIR[1]: chance})
    row = R.claims_table(["atgnn"]).set_index("claim_id").loc["mlg-helps-fsd50k"].to_dict()
    assert row["chance"] == pytest.approx(v.chance) and row["values"] == pytest.approx(v.values)
    assert R.chance_text({**row, "paper": "atgnn", "claim_id": "mlg-helps-fsd50k"}) == \
        f"×{v.values[PAIR[0]] / chance:.1f} vs. ×{v.values[PAIR[1]] / chance:.1f}"
    # the roles come from the pairs the verdict compared, not from today's paper file
    swapped = {**row, "pairs": [{"better": PAIR[1], "worse": PAIR[0]}]}
    assert R.chance_text(swapped) == \
        f"×{v.values[PAIR[1]] / chance:.1f} vs. ×{v.values[PAIR[0]] / chance:.1f}"
    # a better row that learned, though less, still loses: not reproduced
    weaker = targets + rng.normal(scale=2.0, size=targets.shape)
    _record_tagging({PAIR[0]: weaker, PAIR[1]: informative}, targets)
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.verdict == "not reproduced" and "above chance" not in v.evidence
    assert v.values[PAIR[0]] > 1.5 * chance
    # a win over a row at chance is no evidence for the paper either
    _record_tagging({PAIR[0]: informative, PAIR[1]: rng.random(targets.shape)}, targets)
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.interval[0] > 0 and v.verdict == "inconclusive"
    assert f"not measurably above chance: {PAIR[1]} [" in v.evidence


def test_the_chance_rule_leaves_lower_is_better_claims_alone(home, monkeypatch):
    # chance levels are the floor of higher-is-better metrics; a claim that a row scores *lower*
    # (e.g. fewer false alarms read as mAP of a negative class) is decided on its interval only
    test = {"kind": "comparison", "table": "table3", "metric": "mAP", "better": PAIR[0],
            "worse": [PAIR[1]], "higher_is_better": False}
    monkeypatch.setattr(claims_mod, "_claim", lambda paper, cid: {"id": cid, "text": "t", "test": test})
    rng = np.random.default_rng(8)
    targets = (rng.random((300, 5)) < 0.2).astype(int)
    _record_tagging({PAIR[0]: rng.random(targets.shape),
                     PAIR[1]: targets + rng.normal(scale=0.8, size=targets.shape)}, targets)
    v = R.evaluate_claim("atgnn", "made-up-lower")
    assert v.verdict == "reproduced" and v.interval[0] > 0 and "chance" not in v.evidence
    test["higher_is_better"] = True
    assert R.evaluate_claim("atgnn", "made-up-lower").verdict == "inconclusive"


def test_chapter_verdicts_show_chance_ratios_and_old_records_without_them(home):
    ids = [c["id"] for c in R.claims("atgnn")]
    R.register_verdict("atgnn", "mlg-helps-fsd50k", "inconclusive", "e", "synthetic", "small",
                       "smoke", kind="comparison", metric="mAP",
                       values={PAIR[0]: 0.30, PAIR[1]: 0.12}, chance={PAIR[0]: 0.1, PAIR[1]: 0.1})
    # a verdict stored before values and chance existed
    path = R.register_verdict("atgnn", ids[0], "reproduced", "e", "synthetic", "small", "smoke")
    rec = json.loads(path.read_text())
    del rec["values"], rec["chance"]
    path.write_text(json.dumps(rec))
    data = R.chapter_verdicts("atgnn", profile="smoke").data
    assert data.loc["mlg-helps-fsd50k", "÷ chance"] == "×3.0 vs. ×1.2"
    assert data.loc[ids[0], "÷ chance"] == ""


def test_retrieval_chance_level_from_gallery_sizes_by_hand(home):
    # one relevant audio per caption, its rank uniform on 1..G: R@5 = min(5, G) / G;
    # mAP@10 = (1 + 1/2 + ... + 1/min(10, G)) / G
    h10 = sum(1 / r for r in range(1, 11))
    items = R.retrieval_items(_ids(3), [1, 4, 9], gallery=[10, 4, 10])
    items.metric = "R@5"
    assert R.chance_level(items) == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    items.metric = "mAP@10"
    assert R.chance_level(items) == pytest.approx((h10 / 10 + (25 / 12) / 4 + h10 / 10) / 3)
    # an int is every query's gallery; it is stored with the record and read back
    one = R.retrieval_items(_ids(3), [1, 4, 9], gallery=10)
    mean_rr = float(np.mean([1.0, 0.25, 1 / 9]))
    R.record("retrieval", "table3", {"mAP@10": mean_rr}, {}, "synthetic", "small", "smoke",
             items=one)
    rec_id = R.load_records().iloc[-1]["record_id"]
    back = R.load_items(rec_id)["mAP@10"]
    assert back.gallery.tolist() == [10, 10, 10]
    assert R.chance_level(back) == pytest.approx(h10 / 10)
    with pytest.raises(R.RegistryError, match=r"gallery\[1\] = 3 is smaller than ranks\[1\] = 4"):
        R.retrieval_items(_ids(3), [1, 4, 9], gallery=[10, 3, 10])
