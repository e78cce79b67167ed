#!/usr/bin/env bash
# The container image without a container engine: lay out its filesystem as
# packaging/Containerfile would, in a debootstrap chroot of its base
# (debian:bookworm-slim is bookworm's minbase), then run its CMD as its USER
# and its HEALTHCHECK. Catches a RUN step that fails, a postinst that does not
# accept the pre-created uid 999, files the user cannot read or write.
#   packaging/check-container.sh path/to/sensor_*.deb
# Needs root, debootstrap and Debian's package mirror; the minbase root is
# cached in ~/.cache/netsensor-bookworm-minbase.tar. Loopback only.
set -euo pipefail
deb=$(realpath "$1")
cd "$(dirname "$0")/.."
cf=packaging/Containerfile
cache="${SENSOR_MINBASE_CACHE:-$HOME/.cache/netsensor-bookworm-minbase.tar}"

root=$(mktemp -d)
daemon=""
cleanup() {
    [ -z "$daemon" ] || kill "$daemon" 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT

if [ ! -f "$cache" ]; then
    echo "   debootstrap bookworm minbase (cached afterwards in $cache)"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$root.log" 2>&1 ||
        { cat "$root.log" >&2; rm -f "$root.log"; exit 1; }
    rm -f "$root.log"
    mkdir -p "$(dirname "$cache")"
    tar -C "$root" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
else
    tar -C "$root" -xf "$cache"
fi
chmod 755 "$root" # the image's /: uid 999 must traverse it (mktemp and tar leave 0700)
cp "$deb" "$root/tmp/"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# The one RUN instruction, continuation lines joined and comments dropped as Docker does.
run=$(grep -v '^[[:space:]]*#' "$cf" | sed -e :a -e '/\\$/N; s/\\\n/ /; ta' | sed -n 's/^RUN //p')
[ "$(printf '%s\n' "$run" | wc -l)" = 1 ] || { echo "check-container: expected one RUN in $cf" >&2; exit 1; }
user=$(sed -n 's/^USER //p' "$cf" | tail -1)
echo "   RUN as in $cf, then CMD as USER $user"
chroot "$root" /bin/sh -c "$run" >"$root/run.log" 2>&1 || { cat "$root/run.log" >&2; exit 1; }

# CMD (run --config /etc/sensor/sensor.toml) as USER, the listener on a free loopback port.
(cd / && exec chroot --userspec="$user" "$root" /usr/bin/sensor run --config /etc/sensor/sensor.toml \
    --listen 127.0.0.1:0 >"$root/daemon.log" 2>&1) &
daemon=$!
for _ in $(seq 1 150); do # up to 30 s on a loaded machine
    grep -q 'serving 127\.0\.0\.1:' "$root/daemon.log" 2>/dev/null && break
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.2
done
port=$(grep -o 'serving 127\.0\.0\.1:[0-9]*' "$root/daemon.log" | head -1 | cut -d: -f2 || true)
if [ -z "$port" ]; then
    cat "$root/daemon.log" >&2
    echo "check-container: the CMD did not start serving" >&2
    exit 1
fi
# HEALTHCHECK: sensor status, as USER.
chroot --userspec="$user" "$root" /usr/bin/sensor status --listen "127.0.0.1:$port" >/dev/null ||
    { echo "check-container: HEALTHCHECK (sensor status) fails" >&2; exit 1; }
kill -TERM "$daemon"
wait "$daemon" || { cat "$root/daemon.log" >&2; echo "check-container: CMD did not exit 0 on SIGTERM" >&2; exit 1; }
daemon=""
[ "$(stat -c %u "$root/var/lib/sensor/inventory.sqlite")" = "${user%%:*}" ] ||
    { echo "check-container: the inventory is not owned by $user" >&2; exit 1; }
echo "   image layout ok: RUN succeeds, CMD serves as $user with no profiles, HEALTHCHECK passes, SIGTERM exits 0"
