"""Write docs/settings.md from the settings classes (cli.settings.reference).

    .venv/bin/python scripts/settings_reference.py          # rewrite docs/settings.md
    .venv/bin/python scripts/settings_reference.py --check  # exit 1 when it is stale
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.pop("XDG_CACHE_HOME", None)  # defaults are written for a plain machine

from cli.settings import reference  # noqa: E402

TARGET = ROOT / "docs" / "settings.md"


def main() -> int:
    text = reference()
    if "--check" in sys.argv[1:]:
        stale = not TARGET.exists() or TARGET.read_text() != text
        if stale:
            print(f"{TARGET.relative_to(ROOT)} is stale: run scripts/settings_reference.py", file=sys.stderr)
        return 1 if stale else 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
