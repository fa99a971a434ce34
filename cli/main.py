"""The `par` console script's front door: `par runtime serve` is a cold start (Knative scales from
zero through it), so it goes straight to the runtime without importing the whole typer CLI
(typer and every component's commands cost ~10% of the start). Everything else, `--help`
included, is the full CLI in `cli.app`."""

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["runtime", "serve"] and not {"--help", "-h"} & set(argv):
        from runtime.__main__ import main as serve

        sys.exit(serve(argv[2:], prog="par runtime serve"))
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from cli.app import main as full_cli

    try:
        full_cli()
    except (ValidationError, SettingsError) as exc:  # a bad setting, whichever command read it
        from cli.settings import exit_bad_setting

        exit_bad_setting(exc)


if __name__ == "__main__":
    main()
