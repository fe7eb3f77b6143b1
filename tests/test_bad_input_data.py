"""Bad input on the data side, as a new user meets it: every case gives an error naming the file,
row or parameter (or a documented, logged handling), and nothing already written is lost."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audiorepro import paths
from audiorepro.data import audio as A
from audiorepro.data import manifest as M
from audiorepro.data.adapters import AdapterError, adapt
from audiorepro.data.audio import AudioFileError, load_audio, save_audio
from audiorepro.data.cliptable import ClipTable, ClipTableError
from audiorepro.data.dataset import ClipDataset
from audiorepro.frontends import make_frontend

SR = 16000
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO_MANIFEST = Path(__file__).resolve().parents[1] / "data_manifest.csv"


def _tone(path: Path, seconds: float = 0.5, freq: float = 440.0, sr: int = SR) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    return save_audio(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)


def _table(root: Path, rows: list[dict], name: str = "t") -> ClipTable:
    return ClipTable(pd.DataFrame(rows), root, name=name)


def _manifest(tmp_path: Path, rows: list[dict], name: str = "manifest.csv") -> Path:
    full = [{c: "" for c in M.MANIFEST_COLUMNS} | {"kind": "official"} | r for r in rows]
    path = tmp_path / name
    pd.DataFrame(full, columns=M.MANIFEST_COLUMNS).to_csv(path, index=False)
    return path


# ------------------------------------------------------------ 1. manifest rows with a glob
def test_manifest_glob_rows_are_expanded_and_checked(tmp_path):
    good = b"a debian archive"
    sha = hashlib.sha256(good).hexdigest()
    man = _manifest(tmp_path, [dict(dataset="deb", kind="debian", role="archive",
                                    file="pkg_1.6.1-1_*.deb", checksum_algo="sha256", checksum=sha)])
    root = tmp_path / "cache"
    root.mkdir()
    res = M.verify("deb", root, man, progress=False)
    assert res[0].status == "missing (optional)" and "no file matches" in res[0].detail
    (root / "pkg_1.6.1-1_all.deb").write_bytes(b"a corrupt archive")       # same row, bad bytes
    res = M.verify("deb", root, man, progress=False)
    assert res[0].status == "wrong checksum" and "pkg_1.6.1-1_all.deb" in res[0].detail
    assert M.main(["verify", "deb", "--root", str(root), "--manifest", str(man), "--quiet"]) == 1
    (root / "pkg_1.6.1-1_all.deb").write_bytes(good)
    res = M.verify("deb", root, man, progress=False)
    assert res[0].status == "ok" and "pkg_1.6.1-1_all.deb" in res[0].detail
    assert M.main(["verify", "deb", "--root", str(root), "--manifest", str(man), "--quiet"]) == 0


def test_repo_debian_rows_catch_a_corrupt_deb(tmp_path):
    df = M.load_manifest(REPO_MANIFEST)
    row = df[(df["kind"] == "debian") & df["file"].str.contains(r"\*")].iloc[0]
    name = row["file"].replace("*", "all")
    (tmp_path / name).write_bytes(b"not the package")
    res = M.check_row(row, tmp_path, progress=False)
    assert res.status == "wrong checksum" and name in res.detail and res.failed


def test_repo_debian_patterns_match_the_downloaded_file_names():
    """apt-get download writes <pkg>_<version, ':' as %3a>_<arch>.deb; the Debian pool omits
    the epoch. Every Debian row's pattern must match both, or a corrupt .deb goes unchecked."""
    from fnmatch import fnmatchcase

    df = M.load_manifest(REPO_MANIFEST)
    deb = df[df["kind"] == "debian"]
    assert len(deb) >= 10
    for r in deb.itertuples():
        pkg = r.source.split()[2]
        apt_name = f"{pkg}_{r.version.replace(':', '%3a')}_amd64.deb"
        pool_name = f"{pkg}_{r.version.split(':', 1)[-1]}_all.deb"
        assert fnmatchcase(apt_name, r.file) and fnmatchcase(pool_name, r.file), (r.file, apt_name)


# ------------------------------------------------------------------- 2. truncated WAV
def test_truncated_wav_names_file_and_both_counts(tmp_path):
    full = tmp_path / "full.wav"
    sf.write(str(full), np.full(16000, 0.1, np.float32), SR, subtype="PCM_16")
    data = full.read_bytes()
    trunc = tmp_path / "trunc.wav"
    trunc.write_bytes(data[:44 + 8000 * 2])                           # header + half the frames
    assert A.wav_declared_frames(trunc) == 16000
    with pytest.raises(AudioFileError, match=r"trunc.wav.*16000 frames.*16000 were expected.*8000"):
        load_audio(trunc)
    # a segment inside the part that is present reads; one reaching past it does not
    assert load_audio(trunc, start_s=0.0, duration_s=0.25)[0].shape == (4000,)
    with pytest.raises(AudioFileError, match=r"trunc.wav.*4000 were expected.*2000"):
        load_audio(trunc, start_s=0.375, duration_s=0.25)
    assert load_audio(full)[0].shape == (16000,)                      # intact file: no error


# ------------------------------------------------------- 3. negative start_s, 6. sample_rate
def test_bad_segment_and_rate_arguments_name_the_parameter(tmp_path):
    f = _tone(tmp_path / "a.flac")
    with pytest.raises(ValueError, match=r"a.flac.*start_s=-1.0"):
        load_audio(f, start_s=-1.0)
    with pytest.raises(ValueError, match=r"duration_s=0"):
        load_audio(f, duration_s=0)
    for bad in (0, -8000, 16000.5, True):
        with pytest.raises(ValueError, match=rf"sample_rate={bad!r}.*positive integer.*a.flac"):
            load_audio(f, sample_rate=bad)
    assert load_audio(f, sample_rate=16000.0)[1] == 16000            # an integral float is fine
    table = _table(tmp_path, [dict(clip_id="a", path="a.flac", split="train", labels="x")], "toy")
    with pytest.raises(ValueError, match=r"sample_rate=0.*'toy'"):
        ClipDataset(table, sample_rate=0)


def test_clip_table_start_s_and_duration_s_are_checked_by_row(tmp_path):
    rows = [dict(clip_id="a", path="a.flac", split="train", labels="x", start_s=0.0),
            dict(clip_id="b", path="a.flac", split="train", labels="x", start_s=-0.5)]
    with pytest.raises(ClipTableError, match=r"row 1 \(clip_id 'b'\): start_s -0.5 must be a number >= 0"):
        _table(tmp_path, rows)
    rows[1]["start_s"] = "soon"
    with pytest.raises(ClipTableError, match=r"row 1 \(clip_id 'b'\): start_s 'soon'"):
        _table(tmp_path, rows)
    rows[1] = dict(clip_id="b", path="a.flac", split="train", labels="x", start_s=None,
                   duration_s=0)
    with pytest.raises(ClipTableError, match=r"row 1 \(clip_id 'b'\): duration_s 0"):
        _table(tmp_path, rows)
    rows[1]["duration_s"] = None                                       # empty = whole file
    assert len(_table(tmp_path, rows)) == 2


# ------------------------------------------------------------------------ 4. empty clip_id
def test_empty_clip_id_or_path_names_the_row(tmp_path):
    (tmp_path / "t.csv").write_text("clip_id,path,split,labels\na,a.wav,train,x\n,b.wav,train,x\n")
    with pytest.raises(ClipTableError, match=r"t.csv.*row 1 \(path 'b.wav'\): empty clip_id"):
        ClipTable.read(tmp_path / "t.csv")
    (tmp_path / "u.csv").write_text("clip_id,path,split,labels\na,a.wav,train,x\nb,,train,x\n")
    with pytest.raises(ClipTableError, match=r"u.csv.*row 1 \(clip_id 'b'\): empty path"):
        ClipTable.read(tmp_path / "u.csv")


# ------------------------------------------------------------ 5. a directory named x.wav
def test_directory_in_place_of_audio_file(tmp_path):
    (tmp_path / "x.wav").mkdir()
    with pytest.raises(AudioFileError, match=r"x.wav is a directory, not an audio file"):
        load_audio(tmp_path / "x.wav")


# ------------------------------------------------------------------- 7. non-finite input
@pytest.mark.parametrize("preset", ["logmel_64", "kaldi_fbank_128", "vggish", "passt", "panns_16k"])
def test_frontends_reject_non_finite_waves(preset):
    fe = make_frontend(preset)
    n = fe.sample_rate
    x = torch.zeros(3, n)
    x[1, 100] = float("nan")
    x[2, 5] = float("inf")
    with pytest.raises(ValueError, match=r"2 NaN/infinite sample\(s\) in batch row\(s\) \[1, 2\]"):
        fe(x)
    with pytest.raises(ValueError, match=r"in the wave"):
        fe(x[1])
    assert torch.isfinite(fe(torch.zeros(n))).all()


# ------------------------------------------------------------------- 8. duplicated audio
def test_duplicates_by_path_and_by_content_name_rows_and_splits(tmp_path, caplog):
    _tone(tmp_path / "a.flac", freq=300)
    _tone(tmp_path / "b.flac", freq=500)
    shutil.copy(tmp_path / "a.flac", tmp_path / "copy_of_a.flac")
    rows = [dict(clip_id="a", path="a.flac", split="train", labels="x"),
            dict(clip_id="b", path="b.flac", split="train", labels="y"),
            dict(clip_id="a2", path="./a.flac", split="test", labels="x"),     # same file
            dict(clip_id="c", path="copy_of_a.flac", split="valid", labels="x")]  # same bytes
    pd.DataFrame(rows).to_csv(tmp_path / "dup.csv", index=False)
    with caplog.at_level(logging.WARNING, "audiorepro.data.cliptable"):
        t = ClipTable.read(tmp_path / "dup.csv")
    assert "row 0 (clip_id 'a', split train), row 2 (clip_id 'a2', split test)" in caplog.text
    by_path = t.check()
    assert len(by_path) == 1 and "same audio file" in by_path[0] and "across splits test/train" in by_path[0]
    assert t.duplicate_rows() == [[0, 2]]
    assert t.duplicate_rows(content=True) == [[0, 2], [0, 2, 3]]
    by_content = t.check(content=True)
    assert len(by_content) == 2 and "identical audio content" in by_content[1]
    assert "row 3 (clip_id 'c', split valid)" in by_content[1]
    with caplog.at_level(logging.WARNING, "audiorepro.data.cliptable"):
        kept = t.drop_duplicates(content=True)
    assert list(kept.frame["clip_id"]) == ["a", "b"]
    assert "dropped 2 row(s)" in caplog.text and "'c' (= 'a')" in caplog.text
    # segments of one file are not duplicates
    seg = _table(tmp_path, [dict(clip_id="s0", path="a.flac", split="train", labels="x", start_s=0.0),
                            dict(clip_id="s1", path="a.flac", split="test", labels="x", start_s=0.25)])
    assert seg.duplicate_rows(content=True) == [] and seg.check(content=True) == []
    # the command-line check
    assert __import__("audiorepro.data.cliptable", fromlist=["main"]).main(
        ["check", str(tmp_path / "dup.csv"), "--content"]) == 1


def test_debian_task_builder_drops_duplicate_audio_before_writing(tmp_path, monkeypatch, caplog):
    from audiorepro.data.debian import tasks

    src = tmp_path / "src" / "audio"
    _tone(src / "one.flac", freq=300)
    _tone(src / "two.flac", freq=600)
    shutil.copy(src / "one.flac", src / "one_again.flac")

    def fake_task(root):
        return pd.DataFrame({"clip_id": ["one", "two", "one_again"],
                             "path": ["../src/audio/one.flac", "../src/audio/two.flac",
                                      "../src/audio/one_again.flac"],
                             "split": ["train", "train", "test"], "labels": ["a", "b", "c"]})

    monkeypatch.setitem(tasks.TASKS, "fake", fake_task)
    monkeypatch.setitem(tasks.TASK_SOURCES, "fake", ("src",))
    with caplog.at_level(logging.WARNING):
        table = tasks.build_task("fake", root=tmp_path)
    assert list(table.frame["clip_id"]) == ["one", "two"]
    assert "'one_again' (= 'one')" in caplog.text
    written = ClipTable.read(tmp_path / "tasks" / "fake.csv")
    assert list(written.frame["clip_id"]) == ["one", "two"] and written.check(content=True) == []


def test_synthetic_world_reports_identical_clips(tmp_path, monkeypatch, caplog):
    from audiorepro.data import synthetic

    monkeypatch.setattr(synthetic, "render_clip",                 # every clip the same
                        lambda spec, sr: np.full(int(round(spec.duration_s * sr)), 0.1, np.float32))
    with caplog.at_level(logging.WARNING, "audiorepro.data.synthetic"):
        table = synthetic.make_world(tmp_path / "w", n_clips=3, seed=0, clip_seconds=1.0,
                                     progress=False, workers=1)
    assert len(table) == 3                                        # rows kept (visual.npy aligned)
    assert "identical audio content" in caplog.text and "row 0 (clip_id" in caplog.text


# ---------------------------------------------------------------- 9. BOM in .classes.txt
def test_classes_file_with_byte_order_mark(tmp_path):
    (tmp_path / "t.csv").write_text("clip_id,path,split,labels\na,a.wav,train,dog\nb,b.wav,train,cat\n")
    (tmp_path / "t.classes.txt").write_bytes("dog\ncat\nbird\n".encode("utf-8-sig"))
    t = ClipTable.read(tmp_path / "t.csv")
    assert t.classes == ["dog", "cat", "bird"]
    (tmp_path / "t.csv").write_bytes("clip_id,path,split,labels\na,a.wav,train,dog\n".encode("utf-8-sig"))
    assert list(ClipTable.read(tmp_path / "t.csv").frame["clip_id"]) == ["a"]


# ------------------------------------------------------- 10. paths escaping the data root
def test_paths_outside_an_explicit_data_root_are_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _tone(data / "ok.flac")
    (tmp_path / "t.csv").write_text("clip_id,path,split,labels\nok,ok.flac,train,x\n"
                                    "evil,../../etc/passwd,train,x\n")
    with pytest.raises(ClipTableError, match=r"row 1 \(clip_id 'evil'\).*'../../etc/passwd'.*outside the data root"):
        ClipTable.read(tmp_path / "t.csv", root=data)
    (tmp_path / "u.csv").write_text("clip_id,path,split,labels\nok,ok.flac,train,x\n"
                                    "abs,/etc/passwd,train,x\n")
    with pytest.raises(ClipTableError, match=r"row 1 \(clip_id 'abs'\)"):
        ClipTable.read(tmp_path / "u.csv", root=data)
    plain = ClipTable.read(tmp_path / "u.csv")          # no root given: the CSV folder, unconfined
    with pytest.raises(ClipTableError, match=r"clip_id 'abs'"):
        plain.with_root(data)
    ok = ClipTable.read(tmp_path / "u.csv").subset(split="train")
    assert ok.frame["clip_id"].tolist() == ["ok", "abs"]
    inside = plain.frame.iloc[:1].copy()
    confined = ClipTable(inside, data, confine=True).subset("train")
    assert confined.confine and confined.audio_path(0) == data / "ok.flac"


# ------------------------------------------------------- 11. manifest and AUDIOREPRO_HOME
def test_manifest_follows_audiorepro_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    # nothing in the home folder: the checkout's manifest
    assert M.default_manifest_path() == paths.checkout_root() / "data_manifest.csv"
    man = _manifest(tmp_path, [dict(dataset="mine", role="metadata", file="a.csv")],
                    name="data_manifest.csv")
    assert M.default_manifest_path() == man
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("x\n")
    assert M.main(["verify", "mine", "--root", str(tmp_path / "d"), "--quiet"]) == 0


# -------------------------------------------------------------- 12. options, NSynth, LFS
def test_option_values_are_parsed_by_the_adapters_types():
    from audiorepro.data.adapters import ADAPTERS

    assert M.parse_option_value("subsets", "eval", "Sequence[str]") == ["eval"]
    assert M.parse_option_value("subsets", "balanced_train, eval", "Sequence[str]") == \
        ["balanced_train", "eval"]
    assert M.parse_option_value("splits", '["test"]', "Sequence[str] | None") == ["test"]
    assert M.parse_option_value("files", '{"eval.h5": "test"}', "dict[str, str] | None") == \
        {"eval.h5": "test"}
    assert M.parse_option_value("metadata_csv", "/a,b.csv", "str | os.PathLike") == "/a,b.csv"
    with pytest.raises(ValueError, match="option files takes a JSON object"):
        M.parse_option_value("files", "eval.h5", "dict[str, str] | None")
    with pytest.raises(ValueError, match=r"option splits: .* is not valid JSON"):
        M.parse_option_value("splits", "[test", "Sequence[str]")
    with pytest.raises(ValueError, match=r"no option 'subset'.*'subsets'"):
        M.parse_adapter_options(ADAPTERS["audioset"], {"subset": "eval"})


AS_LABELS = 'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/0bt9lr,"Dog"\n'
AS_EVAL = ("# Segments csv created Sun Mar  5 10:54:25 2017\n# num_ytids=1, num_segs=1, "
           "num_unique_labels=1, num_positive_labels=1\n# YTID, start_seconds, end_seconds, "
           'positive_labels\nzzzzzzzzzzz, 5.500, 15.500, "/m/0bt9lr"\n')


def test_verify_passes_a_list_option_as_a_list(tmp_path):
    root = tmp_path / "audioset"
    (root / "eval_segments").mkdir(parents=True)
    (root / "class_labels_indices.csv").write_text(AS_LABELS)
    (root / "eval_segments.csv").write_text(AS_EVAL)
    (root / "eval_segments" / "Yzzzzzzzzzzz.wav").write_bytes(b"")
    man = _manifest(tmp_path, [dict(dataset="audioset", role="table", adapter="audioset", count="1")])
    res = M.verify("audioset", root, man, options={"subsets": "eval"}, progress=False)
    assert res[0].status == "ok" and "1 clips" in res[0].detail
    res = M.verify("audioset", root, man, options={"subset": "eval"}, progress=False)
    assert res[0].status == "bad option" and res[0].failed and "'subset'" in res[0].detail


def test_nsynth_with_only_the_test_split(tmp_path, caplog):
    root = tmp_path / "nsynth"
    (root / "nsynth-test").mkdir(parents=True)
    (root / "nsynth-test" / "examples.json").write_text(json.dumps(
        {"bass_synthetic_068-049-025": {"instrument_family_str": "bass", "pitch": 49, "velocity": 25}}))
    with caplog.at_level(logging.WARNING):
        t = adapt("nsynth", root, on_missing="keep")
    assert list(t.frame["split"]) == ["test"] and "nsynth-train" in caplog.text
    assert len(adapt("nsynth", root, on_missing="keep", splits=["test"])) == 1
    with pytest.raises(AdapterError, match=r"nsynth-train.*examples.json"):
        adapt("nsynth", root, on_missing="keep", splits=["train", "test"])
    with pytest.raises(AdapterError, match="none of the split folders"):
        adapt("nsynth", tmp_path / "empty", on_missing="keep")


LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
               "size 12345\n")


def test_git_lfs_pointer_in_place_of_metadata(tmp_path):
    root = tmp_path / "wavcaps"
    pointer = root / "json_files" / "SoundBible" / "sb_final.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text(LFS_POINTER)
    man = _manifest(tmp_path, [dict(dataset="wavcaps", role="metadata",
                                    file="json_files/SoundBible/sb_final.json", adapter="wavcaps")])
    res = M.verify("wavcaps", root, man, options={"sources": "SoundBible"}, progress=False)
    assert res[0].status == "lfs pointer" and res[0].failed and "size 12345" in res[0].detail
    assert res[1].status == "adapter error" and "Git LFS pointer" in res[1].detail
    with pytest.raises(AdapterError, match=r"sb_final.json is a Git LFS pointer"):
        adapt("wavcaps", root, sources=["SoundBible"])


# ------------------------------------------------- 13. Clotho: one file name in two splits
def test_clotho_file_name_in_two_splits_keeps_both_rows(caplog):
    root = FIXTURES / "clotho_shared_name"
    with caplog.at_level(logging.WARNING, "audiorepro.data.adapters"):
        t = adapt("clotho", root)
    f = t.frame
    assert len(f) == 4 and list(f["split"]) == ["train", "train", "valid", "test"]
    assert list(f["clip_id"]) == ["development/Rain on tin roof", "Door creak",
                                  "validation/Rain on tin roof", "Footsteps"]
    assert t.captions_of(0)[0] == "Rain drums on a metal roof."
    assert t.captions_of(2)[0] == "A bird sings while rain falls."
    assert str(f["sound_id"].iloc[0]) == "1001"
    lines = [r for r in caplog.records if "more than one split" in r.getMessage()]
    assert len(lines) == 1 and "Rain on tin roof.wav" in lines[0].getMessage()
    assert t.check(content=True) == []                       # different recordings, one name


# ------------------------------------------------------- 14. one resampling line, not 1,000
def test_resampling_is_logged_once_per_rate_pair(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(A, "_warned", set())
    files = [_tone(tmp_path / f"{i}.flac", sr=44100, freq=300 + 50 * i) for i in range(4)]
    other = _tone(tmp_path / "low.flac", sr=22050)
    with caplog.at_level(logging.WARNING, "audiorepro.data.audio"):
        for f in files + [other] + files:
            load_audio(f, SR)
    msgs = [r.getMessage() for r in caplog.records if "resampled" in r.getMessage()]
    assert len(msgs) == 2
    assert "44100 Hz resampled to 16000 Hz" in msgs[0] and "0.flac" in msgs[0]
    assert "22050 Hz resampled to 16000 Hz" in msgs[1]
