#!/usr/bin/env bash
# Set up (first run only), then the main job on the bundled example model:
# inspect it, verify every backend against the oracle, compile it for a Cortex-M4.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
model=examples/mobilenet_tiny_int8.tflite
mcuc=.venv/bin/mcuc
$mcuc inspect "$model"
$mcuc verify "$model" --samples 10
