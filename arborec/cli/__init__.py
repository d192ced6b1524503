"""The `arborec` command line: prepare datasets, fit, evaluate and compare recommenders, serve, report.

One module per group of commands, each adding its own sub-parsers (``add_commands``) beside the functions
that run them: `_data` (datasets, prepare, encode, tree, generate), `_fit` (models, fit, recommend,
batch-recommend), `_evaluate` (evaluate, benchmark, suite), `_serve` (serve, forget), `_report` (report,
demo); `_common` holds the options they share.
"""

from __future__ import annotations

import argparse
import logging
import sys

from arborec.cli import _data, _evaluate, _fit, _report, _serve
from arborec.diagnostics import ArborecError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except ArborecError as exc:
        print(f"arborec: error: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arborec",
        description="Hierarchical, language-model-grounded user-interest models for recommendation.",
        epilog="Run `arborec COMMAND --help` for the options of each command.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in (_data, _fit, _evaluate, _serve, _report):
        group.add_commands(sub)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
