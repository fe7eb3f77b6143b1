"""Every command shown to a reader runs (issue #16): the shell commands of README.md, the book's
front page and the chapter index pages.

Commands are the lines of fenced code blocks (a ``cd DIR`` line moves the following ones) and the
inline code spans that start with ``papermill``, ``.venv/bin/papermill``, ``python -m audiorepro``,
``make`` or ``VAR=value make``. Each is checked statically: papermill commands name an existing
notebook and parameter files, and every parameter passes the notebook's own checks (names, types,
guard ranges: ``audiorepro.book.validate_parameters``); ``python -m audiorepro.book`` commands
parse and select notebooks; other ``python -m`` commands name an importable module; ``make``
commands resolve (``make -n``). The papermill commands that change parameters on the command
line only (``-p``, ``-r``, ``-y``: smoke defaults plus the shown values) are also run; those that
read a profile file (``-f``, book or paper size) are only checked. Runs use a temporary
``AUDIOREPRO_HOME`` whose ``data/`` and ``cache/`` are the repository's (content-keyed caches, as
nbval uses them) and whose ``results/`` is fresh, so no record reaches the repository's registry.
"""
from __future__ import annotations

import base64
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from audiorepro import book as B

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "book" / "index.md", *sorted((REPO / "book").glob("*/index.md"))]
PAPERMILL = ("papermill", ".venv/bin/papermill")
PREFIXES = (*PAPERMILL, "python", ".venv/bin/python", "make")


@dataclass
class Shown:
    doc: Path
    line: int
    cwd: Path
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        env = "".join(f"{k}={v} " for k, v in self.env.items())
        return f"{self.doc.relative_to(REPO)}:{self.line}: {env}{shlex.join(self.argv)}"


def _command(doc: Path, line: int, cwd: Path, text: str) -> Shown | None:
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return None
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words or words[0] not in PREFIXES:
        return None
    if words[0].endswith("python") and words[1:2] != ["-m"]:
        return None
    return Shown(doc, line, cwd, words, env)


def shown_commands() -> list[Shown]:
    out = []
    for doc in DOCS:
        fence, cwd = False, REPO
        for number, line in enumerate(doc.read_text(encoding="utf8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                fence, cwd = not fence, REPO
                continue
            if fence:
                words = shlex.split(line, comments=True) if line.strip() else []
                if words[:1] == ["cd"]:
                    cwd = (cwd / words[1]).resolve()
                elif (cmd := _command(doc, number, cwd, line)) is not None:
                    out.append(cmd)
                continue
            for span in re.findall(r"`([^`]+)`", line):
                if (cmd := _command(doc, number, REPO, span)) is not None:
                    out.append(cmd)
    return out


COMMANDS = shown_commands()
PAPERMILL_COMMANDS = [c for c in COMMANDS if c.argv[0] in PAPERMILL]


def papermill_call(cmd: Shown) -> tuple[Path, dict, list[Path], bool]:
    """(notebook, merged parameters, parameter files, whether only -p/-r/-y set them) exactly as
    papermill's own command line parses and merges them."""
    import papermill.cli as pm

    ctx = pm.papermill.make_context("papermill", list(cmd.argv[1:]))
    opts = ctx.params
    notebook = (cmd.cwd / opts["notebook_path"]).resolve()
    files = [(cmd.cwd / f).resolve() for f in opts["parameters_file"] or ()]
    params: dict = {}
    for b64 in opts["parameters_base64"] or ():
        params.update(yaml.safe_load(base64.b64decode(b64)) or {})
    for path in files:
        assert path.is_file(), f"{cmd}: no parameter file {path}"
        params.update(yaml.safe_load(path.read_text(encoding="utf8")) or {})
    for text in opts["parameters_yaml"] or ():
        params.update(yaml.safe_load(text) or {})
    for name, value in opts["parameters"] or ():
        params[name] = pm._resolve_type(value)
    for name, value in opts["parameters_raw"] or ():
        params[name] = value
    return notebook, params, files, not files and not opts["parameters_base64"]


def test_docs_show_commands_to_check():
    names = {c.doc.name for c in COMMANDS}
    assert {"README.md", "index.md"} <= names
    assert len(PAPERMILL_COMMANDS) >= 4                  # README and the front page show two each
    assert not any("01_example" in str(c) for c in COMMANDS)


@pytest.mark.parametrize("cmd", PAPERMILL_COMMANDS, ids=str)
def test_papermill_command_names_a_notebook_and_parameters_that_exist(cmd):
    notebook, params, _files, _ = papermill_call(cmd)
    assert notebook.is_file(), f"{cmd}: no notebook {notebook}"
    assert params, f"{cmd}: shows no parameter"
    B.validate_parameters(notebook, params, None)       # names, types, the guard's ranges


OTHER_COMMANDS = list({(tuple(c.argv), tuple(sorted(c.env.items()))): c
                       for c in COMMANDS if c.argv[0] not in PAPERMILL}.values())


@pytest.mark.parametrize("cmd", OTHER_COMMANDS, ids=str)
def test_python_and_make_commands_resolve(cmd):
    if cmd.argv[0] == "make":
        proc = subprocess.run(["make", "-n", *cmd.argv[1:]], cwd=cmd.cwd, capture_output=True,
                              text=True, env={**os.environ, **cmd.env}, timeout=60)
        assert proc.returncode == 0, f"{cmd}: {proc.stderr}"
        return
    module = cmd.argv[2]
    assert importlib.util.find_spec(module) is not None, f"{cmd}: no module {module}"
    if module == "audiorepro.book":
        args = B.build_parser().parse_args(cmd.argv[3:])
        if args.command == "execute" and args.only:
            assert B.plan(B.Layout(REPO), args.profile, args.only), f"{cmd}: --only selects nothing"


@pytest.fixture(scope="module")
def reader_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("reader_home")
    for name in ("data", "cache"):
        (REPO / name).mkdir(exist_ok=True)
        (home / name).symlink_to(REPO / name)
    return home


def _runs() -> list[Shown]:
    """The papermill commands to run, one per distinct (notebook, parameters)."""
    seen, out = set(), []
    for cmd in PAPERMILL_COMMANDS:
        notebook, params, _files, inline_only = papermill_call(cmd)
        key = (notebook, repr(sorted(params.items())))
        if inline_only and key not in seen:
            seen.add(key)
            out.append(cmd)
    return out


@pytest.mark.parametrize("cmd", _runs(), ids=str)
def test_papermill_command_runs_at_smoke_size(cmd, reader_home, tmp_path):
    argv = list(cmd.argv)
    argv[0] = shutil.which("papermill", path=str(Path(sys.executable).parent)) or argv[0]
    import papermill.cli as pm

    shown_output = pm.papermill.make_context("papermill", argv[1:]).params["output_path"]
    argv[argv.index(shown_output, 2)] = str(tmp_path / "out.ipynb")  # moved to tmp
    env = {**os.environ, **cmd.env, "AUDIOREPRO_HOME": str(reader_home)}
    proc = subprocess.run(argv, cwd=cmd.cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stderr[-3000:]}"
    assert (tmp_path / "out.ipynb").is_file()
