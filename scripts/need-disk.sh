#!/usr/bin/env bash
# Stops early, with the numbers, when the disk that holds PATH has fewer than GB gigabytes
# free. torch with its CUDA libraries takes about 6.5 GB in the venv, and pip running out of
# space halfway leaves a half-installed venv behind an OSError.
#
# Usage: scripts/need-disk.sh GB PATH
set -euo pipefail

need_gb=$1
path=$2
free_kb=$(df -Pk "$path" | awk 'NR == 2 { print $4 }')
if (( free_kb < need_gb * 1024 * 1024 )); then
  echo "error: the disk that holds $path has $(( free_kb / 1024 / 1024 )) GB free;" \
       "installing torch needs about $need_gb GB. Free some space and run 'make venv' again." >&2
  exit 1
fi
