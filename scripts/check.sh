#!/usr/bin/env bash
# Static checks, run by .ci/run after the tests (and by hand: `bash scripts/check.sh`):
#   - import-linter: the layering in .importlinter (pure core, layers, no import cycles);
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/lint-imports
