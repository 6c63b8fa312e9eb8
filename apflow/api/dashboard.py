"""The web dashboard (`GET /`): a static page whose script calls the JSON-RPC API.

The page, its script and its style sheet are read from the package once, at startup. Only
those files are served (a fixed table, so no path from the URL ever reaches the file
system), under a Content-Security-Policy that allows scripts, styles and requests from this
origin only: no inline script, so data that slipped into the page could never run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

# Everything the page needs is on this origin; nothing may frame it or post it elsewhere.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

CONTENT_TYPES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "app.css": "text/css",
}


@dataclass(frozen=True)
class StaticFile:
    """A file's bytes, content type and ETag."""

    body: bytes
    content_type: str
    etag: str


DASHBOARD_FILES = web.AppKey("dashboard_files", dict[str, StaticFile])


def load_static_files() -> dict[str, StaticFile]:
    """The dashboard's files, read from the installed package."""
    folder = resources.files("apflow.api").joinpath("static")
    files = {}
    for name, content_type in CONTENT_TYPES.items():
        body = folder.joinpath(name).read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        files[name] = StaticFile(body, content_type, etag)
    return files


def add_dashboard_routes(app: web.Application) -> None:
    """`GET /` (the page) and `GET /static/{name}` (its script and style sheet)."""
    app[DASHBOARD_FILES] = load_static_files()
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static_file)


async def index(request: web.Request) -> web.Response:
    """The page itself; never cached, so a new release is picked up on reload."""
    return file_response(request, "index.html", cache_control="no-store")


async def static_file(request: web.Request) -> web.Response:
    """The script or the style sheet; revalidated by ETag on every load."""
    name = request.match_info["name"]
    if name == "index.html" or name not in CONTENT_TYPES:
        raise web.HTTPNotFound()
    return file_response(request, name, cache_control="no-cache")


def file_response(request: web.Request, name: str, *, cache_control: str) -> web.Response:
    """One of the files, or 304 when the browser's copy is current."""
    file = request.app[DASHBOARD_FILES][name]
    headers = {"Content-Security-Policy": CSP, "Cache-Control": cache_control,
               "ETag": file.etag}
    if request.headers.get("If-None-Match") == file.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=file.body, content_type=file.content_type, charset="utf-8",
                        headers=headers)
