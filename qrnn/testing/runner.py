"""``qrnn-backend-test``: run the conformance suite against one installed backend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qrnn-backend-test",
        description="Run qrnn's backend conformance suite against an installed backend.",
        epilog="Arguments after '--' go to pytest, e.g. -- -x -k gradient",
    )
    parser.add_argument("--backend", required=True, help="registered backend name")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option, repeatable (VALUE parsed as JSON when possible)",
    )
    args, extra = parser.parse_known_args(argv)
    if extra and extra[0] == "--":
        extra = extra[1:]
    import qrnn
    from qrnn.assignments import parse_assignments

    try:
        parse_assignments(args.option, "--option")
    except qrnn.QRNNError as error:
        print(f"qrnn-backend-test: {error}", file=sys.stderr)
        return 2
    if args.backend not in qrnn.list_backends():
        try:
            qrnn.get_backend(args.backend)
        except qrnn.QRNNError as error:
            print(f"qrnn-backend-test: {error}", file=sys.stderr)
            return 2
    suite = Path(__file__).parent
    pytest_args = [str(suite), "--backend", args.backend, "-p", "no:cacheprovider", "-q"]
    for option in args.option:
        pytest_args += ["--option", option]
    return int(pytest.main(pytest_args + extra))


if __name__ == "__main__":
    sys.exit(main())
