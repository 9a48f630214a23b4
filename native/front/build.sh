#!/usr/bin/env bash
# Build authd-front (the native gRPC front end) into native/build/ from Debian's packaged gRPC
# and protobuf: protoc generates the messages and the OtpService stubs, g++ compiles. Rebuilds
# only when a source or proto is newer than the binary.
#   bash native/front/build.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/native/build
BIN=$OUT/authd-front
SRC=$ROOT/native/front
PROTOS=$ROOT/protos
PYTHON=${PYTHON:-python3}

if [ "${1:-}" != "--force" ] && [ -x "$BIN" ] \
   && [ -z "$(find "$SRC" "$PROTOS" -newer "$BIN" -type f | head -1)" ]; then
  echo "authd-front is up to date"
  exit 0
fi

# google/rpc/*.proto as the Python package googleapis-common-protos ships them
COMMON=$("$PYTHON" -c 'import google.rpc, pathlib; print(pathlib.Path(next(iter(google.rpc.__path__))).parent.parent)')
GEN=$OUT/gen
rm -rf "$GEN"
mkdir -p "$GEN"
protoc -I"$PROTOS" -I"$COMMON" --cpp_out="$GEN" \
  authd/v1/otp.proto authd/v1/engine_link.proto
protoc -I"$PROTOS" -I"$COMMON" --grpc_out="$GEN" \
  --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" authd/v1/otp.proto
protoc -I"$COMMON" --cpp_out="$GEN" google/rpc/status.proto google/rpc/error_details.proto \
  google/rpc/code.proto

CXXFLAGS=(-std=c++17 -O2 -g0 -Wall -Wextra -Wno-unused-parameter -pthread -I"$GEN" -I"$SRC"
          $(pkg-config --cflags grpc++ protobuf openssl))
LIBS=($(pkg-config --libs grpc++ protobuf openssl) -pthread)
SOURCES=("$SRC"/*.cc "$GEN"/authd/v1/*.cc "$GEN"/google/rpc/*.cc)
OBJ=$OUT/obj
rm -rf "$OBJ"
mkdir -p "$OBJ"
JOBS=$(nproc 2>/dev/null || echo 2)
printf '%s\n' "${SOURCES[@]}" | xargs -P "$JOBS" -I{} sh -c \
  'g++ "$@" -c "{}" -o "'"$OBJ"'/$(echo "{}" | md5sum | cut -c1-12).o"' _ "${CXXFLAGS[@]}"
g++ -o "$BIN.tmp" "$OBJ"/*.o "${LIBS[@]}"
mv "$BIN.tmp" "$BIN"
echo "built $BIN"
