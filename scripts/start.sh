#!/usr/bin/env bash
# The main job: sets everything up, then runs PAL Studio in a real VS Code (code-server) on
# 127.0.0.1 with the sample project open, and prints the address to open.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --e2e
exec npm run --silent studio
