#!/usr/bin/env bash
# Set up the machine (scripts/setup.sh), check the code, run every test.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -k otp`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PYTHON=${PYTHON:-python3}

echo "== generated code is fresh"
"$PYTHON" scripts/gen_protos.py --check
echo "== ruff"
"$PYTHON" -m ruff check .
echo "== mypy"
"$PYTHON" -m mypy authd devices drivers simulators
echo "== tests"
exec "$PYTHON" -m pytest -q -p no:cacheprovider "$@"
