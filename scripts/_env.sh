# Shared by scripts/*: a project virtualenv with the project installed.
# Installs from the hash-pinned lock requirements/dev.lock (scripts/lock regenerates it),
# and re-installs only when it, pyproject.toml or sandbox/pyproject.toml changed since
# the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=".venv/.installed-$(cat pyproject.toml sandbox/pyproject.toml requirements/dev.lock | sha256sum | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  echo "installing dependencies into .venv from requirements/dev.lock ..." >&2
  # Exactly the locked versions, each checked against its hash; then the service
  # (with its dev tools) and the Corti sandbox (sandbox/, a dev-only distribution that
  # the service's package and image leave out) without resolving anything anew.
  python -m pip install --quiet --require-hashes -r requirements/dev.lock >&2
  python -m pip install --quiet --no-deps --no-build-isolation -e . -e ./sandbox >&2
  if ! python -m pip check >&2; then
    echo "requirements/dev.lock does not cover pyproject.toml: run scripts/lock" >&2
    exit 1
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
