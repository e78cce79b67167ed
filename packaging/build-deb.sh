#!/usr/bin/env bash
# Build the Debian package of the appliance:
#   1. the shipped binary: the `dist` profile (release plus fat LTO, see Cargo.toml;
#      SENSOR_PROFILE=release for a quicker package), cargo build --profile dist -p sensor,
#   2. its man pages (gzipped) and shell completions, generated from the clap definition
#      (`sensor generate-assets`) into $CARGO_TARGET_DIR/<profile>/assets/, which
#      the `assets` of sensor/Cargo.toml name as target/release/assets/… (cargo-deb
#      resolves that prefix to the profile's directory),
#   3. cargo deb -p sensor --no-build (metadata: [package.metadata.deb]).
# Extra arguments go to cargo deb (e.g. --output DIR). Prints the .deb's path.
# Needs cargo-deb: cargo install cargo-deb --locked
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

command -v cargo-deb >/dev/null || {
    echo "build-deb: cargo-deb is missing: cargo install cargo-deb --locked" >&2
    exit 1
}
profile="${SENSOR_PROFILE:-dist}"
cargo build --profile "$profile" --locked -p sensor >&2
assets="$CARGO_TARGET_DIR/$profile/assets"
rm -rf "$assets"
"$CARGO_TARGET_DIR/$profile/sensor" generate-assets --out "$assets" >/dev/null
# cargo-deb compresses man pages only when they are not build products: do it here.
gzip -9n "$assets"/man/*.1
# --strip: the release and dist profiles keep line tables for backtraces; the package does not.
cargo deb -p sensor --no-build --profile "$profile" --strip "$@"
