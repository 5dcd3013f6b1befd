#!/usr/bin/env bash
# Set up everything mcuc needs on a Debian/Ubuntu machine with Python 3.11:
# the arm-none-eabi toolchain, make, cmake and cppcheck (Debian packages) and a virtual environment in .venv with
# mcuc and its test extras. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need_apt+=(gcc-arm-none-eabi)
[ -d /usr/lib/arm-none-eabi/newlib ] || need_apt+=(libnewlib-arm-none-eabi)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v cppcheck >/dev/null 2>&1 || need_apt+=(cppcheck)  # tests/runtime_c/test_cppcheck.py
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$python" --version)"
  "$python" -m venv .venv
fi
stamp=.venv/.mcuc-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  echo "setup: installing mcuc and its test extras into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # no cache: the wheels are unpacked once into .venv, a second copy only costs disk
  .venv/bin/python -m pip install -q --no-cache-dir -e '.[test]'
  touch "$stamp"
fi
