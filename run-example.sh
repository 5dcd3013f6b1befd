#!/usr/bin/env bash
# Set up (first run only), then the main job on the bundled example model: inspect it,
# verify every backend against the oracle (tflite-micro), compile it into a Cortex-M4
# project in out/example, and measure it on the emulated core.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
model=examples/mobilenet_tiny_int8.tflite
mcuc=.venv/bin/mcuc
$mcuc inspect "$model"
echo
$mcuc verify "$model" --backends reference,llvm,c-host,cortex-m0,cortex-m4,cortex-m7 --samples 3
echo
$mcuc compile "$model" -o out/example --target cortex-m4
echo
$mcuc bench "$model" --target cortex-m4
