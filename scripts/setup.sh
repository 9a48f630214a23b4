#!/usr/bin/env bash
# Install everything authd needs on a fresh Debian machine (idempotent): system packages for
# the real device stacks (SoftHSM2, pcscd + vpcd, OpenSC, liblouis, PostgreSQL), Debian's gRPC
# for the native front end, the Python package with its development tools, then the native front
# end itself (native/front/build.sh: skipped when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  softhsm2 p11-kit opensc pcscd vsmartcard-vpcd pcsc-tools libpcsclite-dev swig yubico-piv-tool
  liblouis-bin liblouis-data liblouis20 postgresql gcc nghttp2-client openssl faketime
  # the native front end (native/front/build.sh)
  g++ pkg-config protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev libssl-dev
  libp11-kit-dev
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing system packages: ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import authd, grpc_tools, pytest, smartcard, hid" 2>/dev/null \
   || [ "${AUTHD_REINSTALL:-0}" = 1 ] || [ pyproject.toml -nt .authd-installed ]; then
  echo "== installing the authd Python package and its tools"
  "$PYTHON" -m pip install -q --disable-pip-version-check -e ".[dev,smartcard,hid]"
  touch .authd-installed
fi

echo "== the native front end"
PYTHON="$PYTHON" bash native/front/build.sh
