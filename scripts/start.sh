#!/usr/bin/env bash
# The main job: sets everything up, then runs the PAL demo headless on the embedded default model
# (models/pal-default) and the sample project (samples/studio): a short alignment run, select then
# generate on held-out examples, a before/after table and an HTML report (pal demo --help).
# `npm run studio` opens the same sample project in a real VS Code (code-server).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec node dist/cli.js demo "$@"
