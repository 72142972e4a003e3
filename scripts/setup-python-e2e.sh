#!/usr/bin/env bash
# Creates .venv-e2e/ (the Python environment of the SDK end-to-end tests in tests/python/) and
# installs the pinned requirements into it. Safe to re-run: an up-to-date venv is left alone.
#
#   scripts/setup-python-e2e.sh
#   cargo test -p tollgate-proxy --test python_sdks
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-e2e
req=tests/python/requirements.txt
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "python e2e venv is up to date ($venv)"
    exit 0
fi

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" >"$stamp"
echo "python e2e venv ready: $venv ($("$venv/bin/python" -m pip --disable-pip-version-check freeze | grep -Ei '^(openai|anthropic|pytest)==' | tr '\n' ' '))"
