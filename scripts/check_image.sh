#!/usr/bin/env bash
# Build the center role's container image, check that it runs as an unprivileged user, start
# it with a trial configuration and wait until it answers the gRPC health service; then remove
# the container and the image. Needs a container runtime (docker); the test suite checks the
# image's recipe without one (tests/service/test_operations.py).
#
#   bash scripts/check_image.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-50051}"
tag="authd-center-check:$(date +%s)"
name="${tag//:/-}"
config="$(mktemp -d)"
cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker rmi -f "$tag" >/dev/null 2>&1 || true
    rm -rf "$config"
}
trap cleanup EXIT
docker build -t "$tag" .
user="$(docker run --rm --entrypoint id "$tag" -u)"
if [ "$user" = "0" ]; then
    echo "the image runs as root" >&2
    exit 1
fi
printf 'roles = ["center"]\nsimulators = false\n[kek]\nkind = "file"\n[server]\nlisten = "127.0.0.1:%s"\ninsecure = true\n' \
    "$port" > "$config/authd.toml"
chmod 0755 "$config"
docker run -d --name "$name" --network host -v "$config:/etc/authd:ro" "$tag" >/dev/null
for _ in $(seq 60); do
    if docker exec "$name" authd health --address "127.0.0.1:$port" --insecure >/dev/null 2>&1; then
        echo "the image serves (user $user, port $port)"
        exit 0
    fi
    sleep 1
done
docker logs "$name" >&2 || true
echo "the image did not answer the health service within 60 s" >&2
exit 1
