"""Headless Chromium over the DevTools protocol: just enough to test pages.

Debian's `chromium` package, driven through its DevTools websocket with the
`websockets` library the service already depends on: no WebDriver, no
Playwright download.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
)


def chromium_path() -> str | None:
    """The Chromium binary, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class ConsoleEntry:
    """One console message or uncaught exception."""

    level: str
    text: str
    url: str = ""


@dataclass
class Page:
    """One tab, attached with a flat DevTools session."""

    browser: Browser
    session_id: str
    console: list[ConsoleEntry] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    loaded: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """A DevTools command in this tab."""
        return await self.browser.send(method, params, self.session_id)

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params["type"] in (
            "error",
            "assert",
        ):
            text = " ".join(
                str(arg.get("value", arg.get("description", "")))
                for arg in params["args"]
            )
            self.console.append(ConsoleEntry("error", text))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details["text"]
            self.console.append(ConsoleEntry("exception", text, details.get("url", "")))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.console.append(
                ConsoleEntry("log", entry["text"], entry.get("url", ""))
            )
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Page.loadEventFired":
            self.loaded.set()

    async def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.loaded.clear()
        await self.send("Page.navigate", {"url": url})
        async with asyncio.timeout(20):
            await self.loaded.wait()

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 10.0) -> Any:
        """Poll until `expression` is truthy; returns its value."""
        value: Any = None
        try:
            async with asyncio.timeout(seconds):
                while not (value := await self.evaluate(expression)):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(
                f"still false after {seconds} s: {expression}"
            ) from None
        return value

    async def type_into(self, selector: str, text: str) -> None:
        """Focus an input and type `text` as a user would."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", {"text": text})

    async def click(self, selector: str) -> None:
        """Click an element."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    async def screenshot(self, path: Path) -> None:
        """A PNG of the viewport."""
        data = await self.send("Page.captureScreenshot", {"format": "png"})
        await asyncio.to_thread(path.write_bytes, base64.b64decode(data["data"]))


class Browser:
    """A Chromium process and its DevTools connection."""

    def __init__(
        self, process: asyncio.subprocess.Process, ws: ClientConnection
    ) -> None:
        self.process = process
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.pages: dict[str, Page] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if "id" in message:
                future = self.pending.pop(message["id"], None)
                if future is not None and not future.done():
                    if "error" in message:
                        future.set_exception(RuntimeError(message["error"]))
                    else:
                        future.set_result(message.get("result", {}))
            elif (page := self.pages.get(message.get("sessionId", ""))) is not None:
                page.on_event(message["method"], message.get("params", {}))

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Any:
        """A DevTools command; returns its result."""
        message_id = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[message_id] = future
        message: dict[str, Any] = {
            "id": message_id,
            "method": method,
            "params": params or {},
        }
        if session_id is not None:
            message["sessionId"] = session_id
        await self.ws.send(json.dumps(message))
        async with asyncio.timeout(30):
            return await future

    async def new_page(self, width: int = 1440, height: int = 1400) -> Page:
        """A fresh tab with console, network and page events enabled."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        self.pages[page.session_id] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            await page.send(f"{domain}.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return page


@asynccontextmanager
async def launch(binary: str, profile: Path) -> AsyncIterator[Browser]:
    """Start Chromium with a fresh profile; stop it afterwards."""
    env = {**os.environ, "TZ": "UTC", "LANG": "en_US.UTF-8"}
    process = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        await _until(port_file.exists, 20)
        await _until(lambda: len(port_file.read_text().split()) == 2, 5)
        port, path = port_file.read_text().split()
        async with connect(f"ws://127.0.0.1:{port}{path}", max_size=None) as ws:
            browser = Browser(process, ws)
            try:
                yield browser
            finally:
                browser.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await browser.reader
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def _until(condition: Callable[[], bool], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - waiting on another process's file
            await asyncio.sleep(0.05)
