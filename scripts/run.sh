#!/usr/bin/env bash
# One command from a fresh clone to the running chat page: set up, ingest the sample data into the
# embedded store on first start (app.py does it), serve on http://127.0.0.1:7860.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_DISABLE_TELEMETRY=1 ANONYMIZED_TELEMETRY=False
exec .venv/bin/python app.py "$@"
