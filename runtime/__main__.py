"""`python -m runtime [PATH.apkg|DIR] [--port N]`: the container entrypoint.

Without arguments it reads `AGENT_PACKAGE_PATH` or `PACKAGE_URL` (and `PACKAGE_SHA256`, `PORT`),
like the current Pixell runtime. argparse, not typer: this is the cold-start path.
"""

import argparse
import sys

from runtime.server import run


def main(argv: list[str] | None = None, prog: str = "python -m runtime") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Serve one agent package.")
    parser.add_argument(
        "package", nargs="?", help="APKG file or prepared folder (default: AGENT_PACKAGE_PATH)"
    )
    parser.add_argument("--port", "-p", type=int, help="port to bind (default: $PORT or 8080)")
    parser.add_argument("--host", help="address to bind (default: 0.0.0.0)")
    args = parser.parse_args(argv)
    return run(args.package, port=args.port, host=args.host)


if __name__ == "__main__":
    sys.exit(main())
