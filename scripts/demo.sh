#!/usr/bin/env bash
# Set up (scripts/setup.sh), then the main job: the command line's summary of a real model,
# torchvision's resnet18 (its architecture, built without weights; extra arguments go to the CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/torchtally resnet18 --depth 1 "$@"
