"""paths.project_path: how notebook parameters name files."""
from __future__ import annotations

from pathlib import Path

from audiorepro import paths


def test_project_path_resolves_missing_relative_paths_against_the_home(tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    (cwd / "data").mkdir(parents=True)
    home.mkdir()
    monkeypatch.setenv("AUDIOREPRO_HOME", str(home))
    monkeypatch.chdir(cwd)
    assert paths.project_path("data") == Path("data")                         # exists here: as given
    assert paths.project_path("data/miniatures/x.csv") == home / "data/miniatures/x.csv"
    assert paths.project_path(tmp_path / "nowhere") == tmp_path / "nowhere"   # absolute: as given
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.project_path("~/nowhere") == tmp_path / "nowhere"            # ~ expanded
