#!/usr/bin/env bash
# Set up this machine (scripts/setup.sh), then run authd on the embedded default with its
# simulators and a branch scenario (python -m authd.demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m authd.demo "$@"
