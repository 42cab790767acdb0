#!/usr/bin/env bash
# Creates .venv and installs the project. torch comes first and pinned (the CPU build on this
# platform), so no dependency drags in a multi-GB CUDA build. Safe to run again: it skips work
# when pyproject.toml has not changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${1:-}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.faqbot-installed${EXTRAS:+-$EXTRAS}"
want="$(sha1sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".${EXTRAS:+[$EXTRAS]}"
  echo "$want" > "$stamp"
fi
