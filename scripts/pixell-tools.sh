#!/usr/bin/env bash
# The real packaging tools, pinned, each in its own venv (they both install a `pixell` command):
#   .cache/tools/pixell-kit/bin/pixell  (pixell-kit 0.4.x, layout with dist/)
#   .cache/tools/pixell-sdk/bin/pixell  (pixell-sdk 0.5.x, surface files at the root)
# Arguments name which (kit, sdk); both by default.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
declare -A PINNED=([kit]="pixell-kit==0.4.12" [sdk]="pixell-sdk==0.5.4")
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(kit sdk)
for which in "${tools[@]}"; do
  req=${PINNED[$which]}
  dir=.cache/tools/pixell-$which
  if [ "$(cat "$dir/.requirement" 2>/dev/null)" != "$req" ]; then
    echo "==> installing $req into $dir"
    "$UV" venv --quiet --clear --python "$(.venv/bin/python -c 'import sys; print(sys.executable)')" "$dir"
    VIRTUAL_ENV="$PWD/$dir" "$UV" pip install --quiet "$req"
    echo "$req" >"$dir/.requirement"
  fi
done
