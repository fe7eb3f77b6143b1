"""Real recordings from Debian packages: an offline mini-benchmark as clip tables.

Packages are fetched without installing anything (``apt-get download`` + ``dpkg-deb -x`` into
``cache_dir("debian")``, see :mod:`.fetch`); each source's builder writes 16 kHz mono FLAC clips
and a :class:`~audiorepro.data.cliptable.ClipTable` under ``data_dir("debian", NAME)``
(:mod:`.build`). Sources (:mod:`.sources`): ``asterisk``, ``tuxpaint``, ``klettres``,
``hedgewars``, ``hydrogen``, ``soundfont``. Task tables for the book: :mod:`.tasks`.

A machine without apt or without the Debian mirror raises :class:`DebianSourceUnavailable`
naming the package; the book then falls back to the synthetic world.

CLI: ``python -m audiorepro.data.debian build [--only NAME ...] [--force]``,
``python -m audiorepro.data.debian tasks`` (build and count every task table).
"""
from .build import build_all, build_source, is_built, load_source, table_path, write_manifest_rows
from .fetch import DebianSourceUnavailable, fetch_package, fluidsynth
from .sources import SOURCES, DebianSource, get_source

__all__ = ["DebianSourceUnavailable", "DebianSource", "SOURCES", "get_source", "fetch_package",
           "fluidsynth", "build_source", "build_all", "load_source", "is_built", "table_path",
           "write_manifest_rows"]
