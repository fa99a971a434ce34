#!/usr/bin/env bash
# The real packaging tools, pinned, each in its own venv (they both install a `pixell` command):
#   .cache/tools/pixell-kit/bin/pixell  (pixell-kit 0.4.x, layout with dist/)
#   .cache/tools/pixell-sdk/bin/pixell  (pixell-sdk 0.5.x, surface files at the root)
set -euo pipefail
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
for spec in "pixell-kit:pixell-kit==0.4.12" "pixell-sdk:pixell-sdk==0.5.4"; do
  name=${spec%%:*}; req=${spec#*:}
  dir=.cache/tools/$name
  if [ "$(cat "$dir/.requirement" 2>/dev/null)" != "$req" ]; then
    echo "==> installing $req into $dir"
    "$UV" venv --quiet --clear --python "$(.venv/bin/python -c 'import sys; print(sys.executable)')" "$dir"
    VIRTUAL_ENV="$PWD/$dir" "$UV" pip install --quiet "$req"
    echo "$req" >"$dir/.requirement"
  fi
done
