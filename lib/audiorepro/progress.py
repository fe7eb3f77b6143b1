"""Progress bars for long loops: ``from audiorepro.progress import tqdm``.

tqdm's ``tqdm.auto`` gives a notebook widget when ipywidgets is installed and a text bar
otherwise; in the second case tqdm warns ("IProgress not found ...", with the path of the
virtual environment) on every executed notebook page, whichever package imports it first
(ours, transformers, huggingface_hub). :func:`quiet_ipywidgets_warning` filters that one
warning for the process (the package calls it on import), so the published pages carry no
machine path; the bars themselves work as before.
"""
from __future__ import annotations

import warnings

__all__ = ["tqdm", "quiet_ipywidgets_warning"]


def quiet_ipywidgets_warning() -> None:
    """Ignore tqdm's "IProgress not found" warning from now on in this process."""
    warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")
    warnings.filterwarnings("ignore", message="IProgress not found")


quiet_ipywidgets_warning()
from tqdm.auto import tqdm  # noqa: E402  (after the filter: the warning is raised on import)
