# Shared by scripts/*: a project virtualenv with the project installed.
# Re-installs only when pyproject.toml or sandbox/pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=".venv/.installed-$(cat pyproject.toml sandbox/pyproject.toml | sha256sum | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  echo "installing dependencies into .venv ..." >&2
  python -m pip install --quiet --upgrade pip >&2
  # The service with its dev tools, and the Corti sandbox (sandbox/, a dev-only
  # distribution that the service's package and image leave out).
  python -m pip install --quiet -e '.[dev]' -e ./sandbox >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi
