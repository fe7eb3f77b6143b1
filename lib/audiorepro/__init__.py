"""audiorepro: the library behind the executable book reproducing five audio ML papers."""
__version__ = "0.1.0"
