"""Write a notebook from a plain-text cell script (no outputs), for authors of the book.

Usage: python tools/new_notebook.py SCRIPT.py OUT.ipynb

In SCRIPT, cells are separated by lines ``# %%`` (code), ``# %% [markdown]`` (markdown; each line
starts with ``# ``) and ``# %% parameters`` (the one parameters cell), the jupytext "percent" style.
The parameter guard cell (``tools/add_parameter_guard.py``; no ranges) follows the parameters cell.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from add_parameter_guard import insert_guard
from audiorepro.book import GuardSpec


def parse(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    blocks = re.split(r"^# %%(.*)$", text, flags=re.M)
    for header, body in zip(blocks[1::2], blocks[2::2]):
        body = body.strip("\n")
        kind = header.strip()
        if kind == "[markdown]":
            md = "\n".join(re.sub(r"^# ?", "", ln) for ln in body.splitlines())
            nb.cells.append(nbformat.v4.new_markdown_cell(md))
        else:
            cell = nbformat.v4.new_code_cell(body)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    insert_guard(nb, GuardSpec())
    return nb


if __name__ == "__main__":
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    nbformat.write(parse(src.read_text()), out)
    print(f"wrote {out}")
