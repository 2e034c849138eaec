#!/usr/bin/env bash
# Set up (scripts/setup.sh) and print the summary of a real model: torchvision's resnet18.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/resnet18_summary.py
