# Shared by scripts/*: a project virtualenv with the project installed.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  echo "installing dependencies into .venv ..." >&2
  python -m pip install --quiet --upgrade pip >&2
  python -m pip install --quiet -e '.[dev]' >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi
