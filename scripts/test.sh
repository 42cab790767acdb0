#!/usr/bin/env bash
# One command from a fresh clone to the test results: set up (with test extras), make sure Debian's
# Chromium (browser tests) and PostgreSQL (question-log tests) are there, run pytest.
# `bash scripts/test.sh --fast` runs only the unmarked tests (the developer loop); CI runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
need=""
[ -x /usr/bin/chromium ] || need="chromium"
fc-list 2>/dev/null | grep -qi nanum || need="$need fonts-nanum"   # Hangul in screenshots
fc-list 2>/dev/null | grep -qi emoji || need="$need fonts-noto-color-emoji"   # 👍/👎 in screenshots
[ -x /usr/lib/postgresql/15/bin/initdb ] || need="$need postgresql"   # question-log tests on a real server
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
  ($SUDO apt-get install -y -q $need >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q $need >/dev/null 2>&1; }) \
    || echo "warning: could not install $need with apt; without chromium the browser test is skipped" >&2
fi
export HF_HUB_OFFLINE=1 ANONYMIZED_TELEMETRY=False TOKENIZERS_PARALLELISM=false
if [ "${1:-}" = "--fast" ]; then  # the developer loop: unmarked tests only (CI runs everything)
  shift
  set -- -m "not (e5 or server or browser or postgres or app or slow)" "$@"
fi
exec .venv/bin/python -m pytest "$@"
