#!/usr/bin/env bash
# Installs what the conformance testbed and the peer comparison need. Idempotent: installs only
# what is missing. Debian 12 (bookworm), as root (or via sudo).
#   servers: openssl (s_server), nginx-light, gnutls-bin (gnutls-serv/gnutls-cli)
#   peers:   nmap, sslscan, testssl.sh (Debian packages), sslyze (PyPI, in a venv)
#   helpers: strace (connection counting), python3-venv
set -euo pipefail

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

pkgs=(openssl nginx-light gnutls-bin nmap sslscan testssl.sh strace python3-venv)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

# sslyze (and its nassl, which bundles its own legacy-capable OpenSSL) in a private venv
VENV=${PEERS_VENV:-$HOME/.cache/netsensor-peers/venv}
SSLYZE_VERSION=${SSLYZE_VERSION:-6.3.1}
PY=${PYTHON:-python3}
if [[ ! -x $VENV/bin/sslyze ]] || ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('sslyze') != '$SSLYZE_VERSION')" 2>/dev/null; then
    [[ -x $VENV/bin/python ]] || "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet "sslyze==$SSLYZE_VERSION"
fi

echo "versions:"
openssl version
nginx -v 2>&1
gnutls-serv --version 2>&1 | head -1
nmap --version | head -1
sslscan --version 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | grep -m1 -E '[0-9]+\.[0-9]+'
dpkg-query -W -f='testssl.sh ${Version}\n' testssl.sh
echo "sslyze $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("sslyze"))')"
