"""Corti's official JS SDK (npm @corti/sdk 1.0.0) against the sandbox, including
extract-facts, coding and /transcribe (guided documents are newer than 1.0.0).

The SDK is installed with `npm ci` from tests/corti/js/package-lock.json into a
cache folder (`CORTI_JS_SDK_DIR`, default ~/.cache/corti-usage/js-sdk) and
reused while the lock file is unchanged. If npm cannot install it, the test
fails: CI must run it. tests/corti/js/sdk_check.cjs drives the SDK and also
checks every answer and stream message against the SDK's own schemas, strictly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from corti_sandbox.testing import SandboxServer

JS_DIR = Path(__file__).parent / "js"
NODE = shutil.which("node") or "/usr/bin/node"
NPM = shutil.which("npm") or "/usr/bin/npm"


def _cache_dir() -> Path:
    default = Path.home() / ".cache" / "corti-usage" / "js-sdk"
    return Path(os.environ.get("CORTI_JS_SDK_DIR", default))


@pytest.fixture(scope="session")
def js_sdk() -> Path:
    """A folder with @corti/sdk 1.0.0 installed (npm ci, cached by lock file)."""
    target = _cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    lock = (JS_DIR / "package-lock.json").read_bytes()
    installed = target / "node_modules" / "@corti" / "sdk" / "package.json"
    up_to_date = (
        installed.exists()
        and (target / "package-lock.json").exists()
        and (target / "package-lock.json").read_bytes() == lock
        and json.loads(installed.read_text())["version"] == "1.0.0"
    )
    if not up_to_date:
        shutil.copy(JS_DIR / "package.json", target / "package.json")
        shutil.copy(JS_DIR / "package-lock.json", target / "package-lock.json")
        try:
            done = subprocess.run(
                [NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                cwd=target,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"npm could not install @corti/sdk: {exc}")
        if done.returncode != 0 or not installed.exists():
            (target / "package-lock.json").unlink(missing_ok=True)
            pytest.fail(
                f"npm ci failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
    return target


def _run_sdk(js_sdk: Path, sandbox: SandboxServer) -> dict[str, Any]:
    done = subprocess.run(
        [NODE, str(JS_DIR / "sdk_check.cjs")],
        env={**os.environ, "CORTI_SDK_DIR": str(js_sdk), "SANDBOX_URL": sandbox.url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"SDK run failed:\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout
    result: dict[str, Any] = json.loads(
        lines[-1].removeprefix("RESULT "), parse_float=Decimal
    )
    result["stderr"] = done.stderr
    return result


def test_official_js_sdk_against_sandbox(js_sdk: Path, sandbox: SandboxServer) -> None:
    result = _run_sdk(js_sdk, sandbox)

    # No schema complaint, no warning of any kind from the SDK.
    assert result["consoleLines"] == []
    assert "valid" not in result["stderr"].lower()
    assert result["stderr"] == ""

    assert result["notFoundStatus"] == 404
    assert result["transcriptCredits"] == Decimal("0.02")  # 48 000 bytes -> 2 s
    assert result["documentCredits"] == Decimal("0.11")  # 46 characters
    assert result["listed"] >= 2
    stream = result["stream"]
    assert stream["closeCode"] == 1000
    assert stream["credits"] == Decimal("0.04")  # 1.5 s of audio
    assert stream["kinds"][-2:] == ["usage", "ENDED"]
    assert "flushed" in stream["kinds"]
    assert "transcript" in stream["kinds"]
    assert "facts" in stream["kinds"]

    # 45 characters: 0.05 + 0.01; coding: 2 systems, 48 characters + the
    # the document's section text, 102 characters in all -> 0.20 + 0.02.
    assert result["factsCredits"] == Decimal("0.06")
    assert result["codingCredits"] == Decimal("0.22")
    dictation = result["dictation"]
    assert dictation["closeCode"] == 1000
    assert dictation["credits"] == Decimal("0.045")  # 2.5 s -> 3 started seconds
    assert dictation["deltas"] == [Decimal("0.015"), Decimal("0.03")]
    assert dictation["kinds"][-2:] == ["usage", "ended"]
    assert {"transcript", "command", "flushed"} <= set(dictation["kinds"])

    exchanges = result["exchanges"]
    assert exchanges[0] == "POST /realms/base/protocol/openid-connect/token 200"
    assert (
        f"POST /v2/interactions/{result['interactionId']}/transcripts/ 201" in exchanges
    )
    assert "GET /v2/interactions/00000000-0000-4000-8000-000000000000 404" in exchanges
    assert "POST /v2/tools/extract-facts 200" in exchanges
    assert "POST /v2/tools/coding/ 200" in exchanges
