#!/usr/bin/env bash
# Installs learn2learn 0.2.0 (used only as a reference baseline in tests) into
# the given Python environment.
#
# Why not plain `pip install learn2learn==0.2.0`: its sdist ships C files made
# by Cython 0.29, which include `longintrepr.h` and fail to compile on Python
# >= 3.11, and its install_requires drag in gsutil and qpth, which nothing we
# use imports. So we fetch the sdist, regenerate the C sources with a current
# Cython, build without dependency resolution, and add only the packages that
# `import learn2learn` really needs.
#
# Usage: scripts/install-learn2learn.sh [PYTHON]   (default: .venv/bin/python)
set -euo pipefail

PY=${1:-.venv/bin/python}
# Absolute, because the build below runs from another directory; the symlink
# itself is kept, since resolving it would step outside the venv.
if [[ "$PY" == */* ]]; then PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"; fi
VERSION=0.2.0
# What `import learn2learn` 0.2.0 imports at module level besides torch,
# torchvision and numpy (found by importing it until nothing was missing):
# requests, tqdm, scipy and gym. gym goes in with --no-deps plus its one needed
# requirement, cloudpickle: its other one, gym_notices, makes every
# `import gym` (and so every `import learn2learn`) print a notice on stderr.
IMPORT_DEPS=(requests tqdm scipy cloudpickle)
GYM="gym>=0.14"
BUILD_DEPS=("cython>=3" setuptools wheel)

installed_version() {
    "$PY" -W ignore -c 'import learn2learn; print(learn2learn.__version__)' 2>/dev/null
}

if [[ "$(installed_version || true)" == "$VERSION" ]]; then
    echo "learn2learn $VERSION already importable with $PY; nothing to do."
    exit 0
fi

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

"$PY" -m pip install --quiet "${BUILD_DEPS[@]}" "${IMPORT_DEPS[@]}"
"$PY" -m pip install --quiet --no-deps "$GYM"

# --no-build-isolation: metadata preparation otherwise builds Cython and
# setuptools from source in a throwaway environment (minutes, for nothing).
"$PY" -m pip download --quiet --no-deps --no-binary learn2learn \
    --no-build-isolation --dest "$workdir" "learn2learn==$VERSION"

tar -xzf "$workdir/learn2learn-$VERSION.tar.gz" -C "$workdir"
src="$workdir/learn2learn-$VERSION"
# The sdist also carries a stale Cython egg and egg-info from its own build.
rm -rf "$src/.eggs" "$src/learn2learn.egg-info" "$src"/learn2learn/data/*.c
(cd "$src" && "$PY" -m cython -3 -X embedsignature=True learn2learn/data/*.pyx)

"$PY" -m pip install --quiet --no-deps --no-build-isolation "$src"

actual=$(installed_version) || {
    echo "learn2learn built but does not import; run: $PY -c 'import learn2learn'" >&2
    exit 1
}
echo "learn2learn $actual installed for $PY."
