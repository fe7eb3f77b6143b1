"""The Debian packages behind the real-recordings mini-benchmark: names, tested versions, licences.

Every source is one or more binary packages of Debian 12 (bookworm). ``version`` is the version
the builders were written against; the version actually fetched is read from the ``.deb``
(``dpkg-deb -f``) and recorded in ``manifest_rows.csv`` and the build's done marker. A different
fetched version is allowed (logged), because the package layout rarely changes.

``licence`` is a summary read from ``/usr/share/doc/<pkg>/copyright`` of the tested version; the
build also records the distinct ``License:`` fields of the fetched copyright file.

Download sizes (``apt-cache show``, bookworm): asterisk 5 x 18-24 MB, tuxpaint-stamps-default
161 MB, klettres-data 40 MB, hedgewars-data 145 MB, hydrogen-drumkits 143 MB, fluid-soundfont-gm
120 MB, fluidsynth + libraries < 2 MB: about 706 MB in total (< 1 GB). Not used (size or
overlap): wesnoth-1.16-data (146 MB, mostly graphics), freepats, ktuberling-data.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DebianSource:
    """One source of the benchmark.

    Attributes:
        name: short name (``--only NAME`` of the CLI, folder under ``data/debian/``).
        packages: Debian binary packages fetched for it.
        version: tested package version (all packages of a source share it here).
        licence: licence summary from the package's copyright file.
        description: what the clips are.
    """

    name: str
    packages: tuple[str, ...]
    version: str
    licence: str
    description: str


ASTERISK_LANGUAGES: dict[str, tuple[str, str]] = {
    # language code -> (sounds folder under usr/share/asterisk/sounds, speaker id)
    # en and es are both recorded by Allison Smith: same voice, two languages.
    "en": ("en_US_f_Allison", "allison"),
    "es": ("es_MX_f_Allison", "allison"),
    "fr": ("fr_CA_f_June", "june"),
    "it": ("it_IT_m_Carlo", "carlo"),
    "ru": ("ru_RU_f_IvrvoiceRU", "ivrvoice_ru"),
}

SOURCES: dict[str, DebianSource] = {s.name: s for s in [
    DebianSource(
        "asterisk", tuple(f"asterisk-core-sounds-{lang}-wav" for lang in ASTERISK_LANGUAGES),
        "1.6.1-1",
        "CC-BY-SA-3.0 (en, es, fr: Allison Smith, June Wallack); CC-BY-3.0 (it, ru)",
        "telephone prompts (digits, letters, phonetic alphabet, words), one speaker per language"),
    DebianSource(
        "tuxpaint", ("tuxpaint-stamps-default",), "2022.06.04-1", "GPL-2",
        "stamp sound effects with English captions, tag paths and images; spoken stamp "
        "descriptions with transcripts; spoken digits and letters"),
    DebianSource(
        "klettres", ("klettres-data",), "4:22.12.3-1",
        "GPL-2+ (some sounds from GCompris, GPL-3+)",
        "spoken letters and syllables in many languages"),
    DebianSource(
        "hedgewars", ("hedgewars-data",), "1.0.2-6",
        "GFDL-1.3 (Data/Sounds); CC-BY-SA-3.0 (Droplet*.ogg)",
        "voice packs of acted game phrases; named game sound effects"),
    DebianSource(
        "hydrogen", ("hydrogen-drumkits",), "2017.09.19~dfsg-1",
        "per kit: GPL-2 / GPL-2+ / CC-BY-SA-3.0 / CC-BY-3.0 / CC0 (see the 'licence' column)",
        "drum hits of 14 kits, instrument names from each kit's drumkit.xml"),
    DebianSource(
        "soundfont", ("fluid-soundfont-gm",), "3.1-5.3", "MIT (Fluid R3 GM, Frank Wen)",
        "the 128 General MIDI programs rendered note by note with fluidsynth"),
]}

# fluidsynth and the shared libraries it needs beyond a minimal Debian 12 with libsndfile,
# glib, pulse, asound, dbus and readline (extracted next to it, used via LD_LIBRARY_PATH).
# Packages already installed system-wide are skipped.
FLUIDSYNTH_PACKAGES: tuple[str, ...] = (
    "fluidsynth", "libfluidsynth3", "libinstpatch-1.0-2", "libjack-jackd2-0",
    "libsdl2-2.0-0", "libsamplerate0", "libdecor-0-0")
FLUIDSYNTH_VERSION = "2.3.1-2"
FLUIDSYNTH_LICENCE = "LGPL-2.1+"


def get_source(name: str) -> DebianSource:
    """The source called ``name``; raises ``KeyError`` listing the known names."""
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown Debian source {name!r}; known: {sorted(SOURCES)}") from None
