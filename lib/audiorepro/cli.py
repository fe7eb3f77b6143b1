"""`audiorepro` command: a thin dispatcher to the library's own command-line modules."""
from __future__ import annotations

import runpy
import sys

COMMANDS = {
    "book": "audiorepro.book",
    "synthetic": "audiorepro.data.synthetic",
    "debian": "audiorepro.data.debian",
    "manifest": "audiorepro.data.manifest",
    "check-model": "audiorepro.backbones.manifest",
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        names = ", ".join(COMMANDS)
        raise SystemExit(f"usage: audiorepro COMMAND [args]; COMMAND is one of: {names}")
    module = COMMANDS[argv[0]]
    sys.argv = [f"audiorepro {argv[0]}"] + argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
