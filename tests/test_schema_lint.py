"""graphql-schema-linter (npm, pinned in tools/schema-lint) finds nothing in schema.graphql.

Its description rules (every type, field, argument, input field and enum value
described, capitalized) and Relay rules (connection types, connection
arguments, PageInfo) run against the generated schema, so a field added
without a description, or a connection without `edges`, fails here.
The tool is installed with `npm ci` into tools/schema-lint/node_modules on
first use (npm's cache in tools/schema-lint/.npm-cache; both gitignored).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "schema-lint"
LINTER = TOOL / "node_modules" / ".bin" / "graphql-schema-linter"
# Every rule of graphql-schema-linter 3.0.1 except the three that want fields,
# input fields and enum values sorted alphabetically (our order is meaningful).
RULES = (
    "arguments-have-descriptions",
    "defined-types-are-used",
    "deprecations-have-a-reason",
    "descriptions-are-capitalized",
    "enum-values-all-caps",
    "enum-values-have-descriptions",
    "fields-are-camel-cased",
    "fields-have-descriptions",
    "input-object-values-are-camel-cased",
    "input-object-values-have-descriptions",
    "relay-connection-arguments-spec",
    "relay-connection-types-spec",
    "relay-page-info-spec",
    "types-are-capitalized",
    "types-have-descriptions",
)


def _linter() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        message = (
            "!!! node/npm NOT FOUND: graphql-schema-linter did NOT run, schema.graphql "
            "is NOT linted (install Node.js 18+ with npm; CI has it) !!!"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with (TOOL / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test runs side by side install once
        if not LINTER.exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--cache", ".npm-cache"],
                cwd=TOOL,
                check=True,
                capture_output=True,
                timeout=300,
            )
    return LINTER


def lint(schema: str) -> subprocess.CompletedProcess[str]:
    """Run the pinned linter with RULES over SDL text."""
    return subprocess.run(
        [str(_linter()), "--stdin", "--format", "compact", "--rules", ",".join(RULES)],
        input=schema,
        cwd=TOOL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_schema_graphql_has_no_lint_findings() -> None:
    result = lint((ROOT / "schema.graphql").read_text())
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "", "")


BAD = '''
"""Q."""
type Query {
  """A page."""
  things(first: Int, after: String): ThingConnection!
  undescribed(input: String): String
}
"""A page."""
type ThingConnection {
  """Nodes."""
  nodes: [String!]!
  """Page."""
  pageInfo: PageInfo!
}
"""Page info."""
type PageInfo {
  """More."""
  hasNextPage: Boolean!
  """End."""
  endCursor: String
}
'''


def test_the_linter_finds_what_it_is_asked_to_find() -> None:
    """A positive control: the rules are active and the run reports them."""
    result = lint(BAD)
    assert result.returncode != 0
    for rule in (
        "relay-connection-types-spec",  # no edges
        "relay-page-info-spec",  # no hasPreviousPage / startCursor
        "arguments-have-descriptions",  # undescribed(input:)
        "fields-have-descriptions",  # Query.undescribed
    ):
        assert f"({rule})" in result.stdout, rule
