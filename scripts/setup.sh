#!/usr/bin/env bash
# Prepare a fresh checkout: virtualenv, dependencies, generated gRPC code and a dev JWT key.
# Safe to run again; each step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ ! -x .venv/bin/python ]; then
  echo "setting up: virtualenv and dependencies (about a minute on first run)"
  python3 -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev,bench,local]' \
    >.venv/install.log 2>&1 || { cat .venv/install.log; exit 1; }
  touch "$stamp"
fi

# Generated code goes to gen/ (ignored by git) and onto the venv's path through a .pth file.
# It is built aside and swapped in, so running services never see a half-written tree.
rm -rf gen.new && mkdir -p gen.new
protos=$(cd proto && find podium -name '*.proto' | sort)
(cd proto && "$root/.venv/bin/python" -m grpc_tools.protoc -I . \
  --python_out="$root/gen.new" --pyi_out="$root/gen.new" --grpc_python_out="$root/gen.new" \
  $protos)
rm -rf gen.old && { [ ! -d gen ] || mv gen gen.old; } && mv gen.new gen && rm -rf gen.old
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$root/gen" > "$site/podium_gen.pth"

# A development signing key; production loads its keys from a Secret.
mkdir -p .podium
if [ ! -f .podium/jwt-ed25519.pem ]; then
  .venv/bin/python -m infra.keygen .podium/jwt-ed25519.pem
fi
