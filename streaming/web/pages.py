"""The dashboard's pages, the API documentation page and the static files.

Every page is the same HTML shell (``static/shell.html``) with its own ES module from
``static/pages/``. To add a page: one ``Page`` entry in ``PAGES`` and one module
``static/pages/<slug>.js`` exporting ``start(ctx)`` (see docs/dashboard.md); API routes it
needs go in ``api.py`` and their SQL in ``queries/``.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from string import Template

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
# copied from the npm package by the install step (never committed)
CHARTS_BUNDLE = "vendor/lightweight-charts.standalone.production.js"
CHARTS_MISSING = (
    "Charts are unavailable: the lightweight-charts bundle is not installed "
    f"(static/{CHARTS_BUNDLE}). Run `make install` (it needs Node and npm) and reload."
)


@dataclass(frozen=True)
class Page:
    slug: str  # also the module static/pages/<slug>.js and <body data-page>
    path: str  # Starlette path; parameters reach the module as ctx.params
    title: str
    charts: bool = False  # loads the lightweight-charts bundle
    nav: bool = True  # listed in the top navigation


PAGES: tuple[Page, ...] = (
    Page("watchlist", "/", "Watchlist"),
    Page("symbol", "/symbol/{symbol}", "Symbol", charts=True, nav=False),
    Page("strategies", "/strategies", "Strategies"),
    Page("orders", "/orders", "Orders & positions"),
    Page("polymarket", "/polymarket", "Polymarket"),
    Page("backtests", "/backtests", "Backtests", charts=True),
)


def charts_installed(static_dir: Path = STATIC_DIR) -> bool:
    return (static_dir / CHARTS_BUNDLE).is_file()


def _nav(current: Page) -> str:
    links = []
    for page in PAGES:
        if page.nav:
            here = ' aria-current="page"' if page is current else ""
            links.append(f'<a href="{page.path}"{here}>{html.escape(page.title)}</a>')
    return "\n      ".join(links)


def render(page: Page, params: dict[str, str], static_dir: Path = STATIC_DIR) -> str:
    shell = Template((static_dir / "shell.html").read_text())
    scripts, banner = "", ""
    if page.charts:
        if charts_installed(static_dir):
            scripts = f'<script src="/static/{CHARTS_BUNDLE}"></script>'
        else:
            banner = f'<div class="banner" id="charts-missing">{html.escape(CHARTS_MISSING)}</div>'
    return shell.substitute(
        title=html.escape(page.title if page.slug != "symbol" else params.get("symbol", "")),
        slug=page.slug,
        params=html.escape(json.dumps(params)),
        nav=_nav(page),
        scripts=scripts,
        banner=banner,
    )


def page_route(page: Page, static_dir: Path = STATIC_DIR) -> Route:
    async def show(request: Request) -> Response:
        params = {k: str(v) for k, v in request.path_params.items()}
        return HTMLResponse(render(page, params, static_dir))

    return Route(
        page.path, show, methods=["GET"], name=f"page-{page.slug}", include_in_schema=False
    )


async def docs(request: Request) -> Response:
    """A plain page listing the endpoints of /openapi.json (nothing fetched from elsewhere)."""
    spec = request.app.openapi()
    rows = []
    for path, operations in sorted(spec.get("paths", {}).items()):
        for method, op in operations.items():
            params = ", ".join(
                p.get("name", "") + ("*" if p.get("required") else "")
                for p in op.get("parameters", [])
            )
            rows.append(
                "<tr><td class='method'>{}</td><td><code>{}</code></td><td>{}</td>"
                "<td>{}</td><td>{}</td></tr>".format(
                    html.escape(method.upper()),
                    html.escape(path),
                    html.escape(str(op.get("summary", "")))
                    + (
                        f"<br><span class='muted'>{html.escape(str(op['description']))}</span>"
                        if op.get("description")
                        else ""
                    ),
                    html.escape(params),
                    html.escape(" ".join(sorted(op.get("responses", {})))),
                )
            )
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>marketflow API</title><link rel='stylesheet' href='/static/style.css'></head>"
        "<body class='docs'><header><span class='brand'>marketflow</span> API</header><main>"
        f"<p>{html.escape(spec['info']['description'])}</p>"
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. Live: "
        "<code>/ws?channels=…&amp;symbols=…</code> sends JSON arrays of "
        "<code>{channel, data}</code>.</p>"
        "<table class='grid'><thead><tr><th>Method</th><th>Path</th><th>What</th>"
        "<th>Parameters (* required)</th><th>Answers</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        "</main></body></html>"
    )
    return HTMLResponse(body)


def routes(static_dir: Path = STATIC_DIR) -> list[BaseRoute]:
    return [
        *(page_route(page, static_dir) for page in PAGES),
        Route("/docs", docs, include_in_schema=False),
        Mount("/static", StaticFiles(directory=static_dir), name="static"),
    ]
