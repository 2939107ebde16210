"""`edgegan` entry point.

Each verb lives in its own module ``edgegan.cli.<verb>`` exposing ``add_arguments(parser)``
and ``run(args) -> int``; modules are imported only when their verb runs, so ``edgegan
--help`` stays fast. EdgeganError becomes a one-line message and its exit code here, and only
here.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util  # not implied by `import importlib`: a regular (non-editable) install crashed without it
import logging
import os
import shlex
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
    "debug-quant": ("edgegan.cli.debug_quant", "find the ops that lose accuracy in an int8 artifact (float vs int8, op by op)"),
    "sweep": ("edgegan.cli.sweep", "run a grid of models x compression x formats x devices on Ray, resumable"),
    "setup": ("edgegan.cli.setup", "install the tools pip cannot install through an extra (setup tflite)"),
    "report": ("edgegan.cli.report", "one self-contained report.html for bundles, profile results and comparisons"),
    "demo": ("edgegan.cli.demo", "the Raspberry Pi and phone demos: a live sample gallery on a board or a phone"),
    "benchmark": ("edgegan.cli.benchmark", "export -> profile on each target -> compare -> report, one table at the end"),
}


def _available_verbs() -> dict[str, tuple[str, str]]:
    out = {}
    for verb, (mod, help_) in VERBS.items():
        if importlib.util.find_spec(mod) is not None:
            out[verb] = (mod, help_)
    return out


def _add_verbose(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="debug logging, including the converters' own output")


NOISY_LOGGERS = ("paramiko",)


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="edgegan", description="Edge deployment for GAN generators.")
    parser.add_argument("--version", action="version", version=f"edgegan {__version__}")
    _add_verbose(parser, False)
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (mod, help_) in _available_verbs().items():
        p = sub.add_parser(name, help=help_, description=help_)
        # `-v` after the verb too; SUPPRESS keeps a `-v` given before the verb
        _add_verbose(p, argparse.SUPPRESS)
        if verb == name:  # only import the verb that runs
            importlib.import_module(mod).add_arguments(p)
    return parser


def unknown_verb_message(word: str) -> str:
    """``unknown verb 'exprot'; did you mean 'export'?`` (argparse lists choices, never the
    closest one)."""
    import difflib

    close = difflib.get_close_matches(word, list(VERBS), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "see `edgegan --help`"
    return f"edgegan: error: unknown verb {word!r}; {hint}"


def _stdout_closed() -> int:
    """The reader of our stdout went away (``edgegan ... --json | head``): stop quietly, as the
    Python docs recommend (point stdout at devnull so the interpreter's final flush cannot
    raise again), with the shell's exit status for a process killed by SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + 13


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
        return code
    except BrokenPipeError:
        return _stdout_closed()


def _main(argv: list[str] | None) -> int:
    from ..errors import EdgeganError

    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    if verb is not None and verb not in VERBS:
        print(unknown_verb_message(verb), file=sys.stderr)
        return 2
    parser = build_parser(verb)
    args = parser.parse_args(argv)
    args.command_line = "edgegan " + shlex.join(argv)  # reports show the command that made them
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # libraries that log their own tracebacks (paramiko prints ~20 lines per failed banner
        # read): edgegan reports the failure itself in one line; -v shows theirs
        for noisy in NOISY_LOGGERS:
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    if not args.verb:
        parser.print_help()
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        module = importlib.import_module(_available_verbs()[args.verb][0])
        return int(module.run(args) or 0)
    except EdgeganError as exc:
        print(f"edgegan {args.verb}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ImportError as exc:
        # a stage that did not check its optional packages up front: still one line, no traceback
        from ..errors import MissingDependencyError
        from ..util.deps import missing_message, optional_module_of

        missing = optional_module_of(exc)
        if missing is None:
            raise
        print(f"edgegan {args.verb}: error: {missing_message([missing], args.verb)}", file=sys.stderr)
        return MissingDependencyError.exit_code
    except KeyboardInterrupt:
        print(f"edgegan {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
