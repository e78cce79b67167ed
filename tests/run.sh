#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian machine: installs what the
# integration tests start when it is missing (up to 19 Debian packages: nginx,
# openssl, gnutls-bin, pebble, lego, certbot, postgresql, debootstrap …), runs
# every test of the workspace, then the packaging test (tests/packaging.sh),
# which installs cargo-deb, builds the .deb and, as root on a machine without
# the package, really installs, upgrades, removes and purges it.
# SKIP_PACKAGING=1 leaves the packaging test (and the packages only it needs)
# out; SENSOR_PKG_INSTALL=0 keeps it but skips the real install.
# Targets only loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
command -v gnutls-serv >/dev/null || need+=(gnutls-bin)
dpkg -s ca-certificates >/dev/null 2>&1 || need+=(ca-certificates)
# ACME through the agent proxy (sensor/tests/proxy.rs): a real CA and two real clients.
command -v pebble >/dev/null || need+=(pebble)
command -v lego >/dev/null || need+=(lego)
command -v certbot >/dev/null || need+=(certbot)
command -v curl >/dev/null || need+=(curl)
# Reporting (sensor/tests/reporting.rs): the fault-injecting and mTLS upstreams are small Python servers.
command -v python3 >/dev/null || need+=(python3)
# Alert e-mail (sensor/tests/alerts.rs): an SMTP sink with STARTTLS and AUTH.
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
# The console's browser tests (sensor/tests/console.rs): Debian's chromium and its WebDriver.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
# ECH (tests/it/ech.rs): testbed/ech-server builds BoringSSL (the boring crate) on first use.
command -v cmake >/dev/null || need+=(cmake)
command -v clang >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
# Host discovery against dark space (tests/it/hosts.rs): a network namespace, nftables counters.
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
# The central inventory in PostgreSQL (tests/it/central.rs starts its own server).
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
# The packaging test (tests/packaging.sh): cargo-deb's $auto Depends, strip,
# systemd-analyze verify/security on the unit, the maintainer scripts' tools,
# a chroot of the container image's base (packaging/check-container.sh).
if [ "${SKIP_PACKAGING:-0}" != 1 ]; then
    command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
    command -v strip >/dev/null || need+=(binutils)
    command -v systemd-analyze >/dev/null || need+=(systemd)
    [ -x /usr/bin/kill ] || need+=(procps)
    command -v adduser >/dev/null || need+=(adduser)
    command -v debootstrap >/dev/null || need+=(debootstrap)
fi
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/netsensor-target}"
cargo test --workspace --all-targets "$@"
# Build the .deb, inspect it, run it from a scratch root, install/remove/purge it.
if [ "${SKIP_PACKAGING:-0}" = 1 ]; then
    echo "SKIP tests/packaging.sh (SKIP_PACKAGING=1)"
else
    ./tests/packaging.sh
fi
