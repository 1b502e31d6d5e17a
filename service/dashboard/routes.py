"""Routes for the dashboard page, GraphiQL's page and their static files."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

# Everything comes from this origin: scripts only from files (no inline code),
# and the pages may not be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@lru_cache(maxsize=4)
def _page(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def page(name: str) -> HTMLResponse:
    """One of the built HTML pages, with the security headers."""
    return HTMLResponse(_page(name), headers=HEADERS)


async def dashboard(_request: Request) -> HTMLResponse:
    """The usage dashboard (the key is typed into the page)."""
    return page("dashboard.html")


def routes() -> list[BaseRoute]:
    """/dashboard and /static."""
    return [
        Route("/dashboard", dashboard, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
