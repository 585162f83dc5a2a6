#!/usr/bin/env bash
# Static checks, run by .ci/run after the tests (and by hand: `bash scripts/check.sh`):
#   - import-linter: the layering in .importlinter (pure core, layers, no import cycles);
#   - ruff: the rule set in ruff.toml (why each family is there, and why some rules are not);
#   - mypy: the pure core (mypy.ini).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/lint-imports
.venv/bin/ruff check .
.venv/bin/mypy
