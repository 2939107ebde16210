"""`edgegan` entry point.

Each verb lives in its own module ``edgegan.cli.<verb>`` exposing ``add_arguments(parser)``
and ``run(args) -> int``; modules are imported only when their verb runs, so ``edgegan
--help`` stays fast. EdgeganError becomes a one-line message and its exit code here, and only
here.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# verb -> (module, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "export": ("edgegan.cli.export", "export a generator to ONNX / ORT / TFLite artifacts in one bundle"),
    "models": ("edgegan.cli.models", "list the model zoo"),
    "env": ("edgegan.cli.env", "show converters and runtimes available here, with versions"),
    "compare": ("edgegan.cli.compare", "compare two sets of samples (LSH/kNN precision-recall, PSNR)"),
    "compress": ("edgegan.cli.compress", "post-training compression of a generator checkpoint"),
    "profile": ("edgegan.cli.profile", "run a bundle on a target device and measure it"),
    "device": ("edgegan.cli.device", "set up or inspect a target device"),
}


def _available_verbs() -> dict[str, tuple[str, str]]:
    out = {}
    for verb, (mod, help_) in VERBS.items():
        if importlib.util.find_spec(mod) is not None:
            out[verb] = (mod, help_)
    return out


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgegan", description="Edge deployment for GAN generators.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (mod, help_) in _available_verbs().items():
        p = sub.add_parser(name, help=help_, description=help_)
        if verb == name:  # only import the verb that runs
            importlib.import_module(mod).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..errors import EdgeganError

    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(verb)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verb:
        parser.print_help()
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    module = importlib.import_module(_available_verbs()[args.verb][0])
    try:
        return int(module.run(args) or 0)
    except EdgeganError as exc:
        print(f"edgegan {args.verb}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"edgegan {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
