"""The phone page's files, served by the extension behind Jupyter's auth (the page itself: tests/e2e/test_phone.py)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from perry_jupyter.handlers.phone import BUNDLE

FILES = ["perry", "perry/", "perry/manifest.webmanifest", "perry/sw.js", "perry/phone/icon.svg", "perry/phone/icon-192.png"]


@pytest.fixture
def fetch(jp_serverapp, http_server_client, jp_base_url):
    """A GET of a path under the base URL as it is written (jp_fetch drops a trailing slash)."""
    async def get(path: str, headers: dict | None = None):
        return await http_server_client.fetch(f"{jp_base_url}{path}", headers=headers or {},
                                              raise_error=False, follow_redirects=False)
    return get


@pytest.mark.parametrize("path", FILES)
async def test_without_credentials_a_visitor_is_sent_to_login_and_back(fetch, jp_base_url, path):
    r = await fetch(path)
    if path == "perry":
        assert r.code == 301 and r.headers["Location"].endswith("/perry/")  # then as /perry/
        return
    assert r.code == 302
    location = urlsplit(r.headers["Location"])
    assert location.path == f"{jp_base_url}login"
    assert parse_qs(location.query)["next"] == [jp_base_url + path]


async def test_the_page_carries_the_base_url_and_sets_the_xsrf_cookie(fetch, jp_auth_header, jp_base_url):
    assert BUNDLE.is_file(), "the phone page is not built: `jlpm build` (scripts/setup does it)"
    r = await fetch("perry/", jp_auth_header)
    assert r.code == 200
    page = r.body.decode()
    assert r.headers["Content-Type"].startswith("text/html")
    config = json.loads(re.search(r'<script id="perry-config" type="application/json">(.*?)</script>', page)[1])
    assert config == {"baseUrl": jp_base_url}
    assert '<script src="phone/build/phone.js">' in page
    assert "_xsrf=" in r.headers.get("Set-Cookie", "")


async def test_the_template_and_unknown_files_are_not_served(jp_fetch):
    for path in ("index.html", "nothing.js"):
        r = await jp_fetch("perry", "phone", path, raise_error=False)
        assert r.code == 404, path
    r = await jp_fetch("perry", "phone", "..", "handlers", "phone.py", raise_error=False)
    assert r.code in (403, 404)  # outside the page's directory


async def test_the_manifest_and_the_worker(jp_fetch):
    r = await jp_fetch("perry", "manifest.webmanifest")
    assert r.headers["Content-Type"].startswith("application/manifest+json")
    manifest = json.loads(r.body)
    assert manifest["start_url"] == "./" and manifest["display"] == "standalone"
    r = await jp_fetch("perry", "sw.js")
    assert "javascript" in r.headers["Content-Type"]
