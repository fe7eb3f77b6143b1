"""audiorepro: the library behind the executable book reproducing five audio ML papers."""
__version__ = "0.1.0"

# tqdm's "IProgress not found" warning names the environment's path on every executed page:
# importing the progress module filters it for the process (audiorepro.progress explains)
from .progress import quiet_ipywidgets_warning as _quiet_ipywidgets_warning  # noqa: E402,F401
