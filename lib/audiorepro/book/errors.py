"""Errors of the book pipeline; each message names the notebook, file or parameter."""
from __future__ import annotations


class BookError(RuntimeError):
    """A notebook, parameter file, toc or build step is wrong; the message names the file."""


class ParameterError(BookError):
    """A notebook parameter is unknown, of the wrong type or out of range (the message names it).

    Raised inside a notebook by the guard cell, IPython shows only the message (one line), not a
    traceback into the library.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"ParameterError: {self}"]
