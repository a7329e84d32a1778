"""What a workspace serves, opened through the server: `GET .../ports`, the reverse proxy at
/perry/proxy and /perry/proxy-absolute (HTTP and WebSockets), and `perry forward`.

A real dev server (tests/fixtures/devserver.py, standard library only) runs inside a real
workspace; a real `perry serve` (a Jupyter server) reaches it through the Docker engine's exec.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest
import requests
import websocket

from ..conftest import TEST_PREFIX
from .conftest import PERRY, free_port, until

pytestmark = pytest.mark.engine

DEVSERVER = Path(__file__).parent.parent / "fixtures" / "devserver.py"
PORT = 8100
BIG = 50 * 1024 * 1024


def pattern(n: int) -> bytes:
    block = bytes(range(256)) * 256
    whole, rest = divmod(n, len(block))
    return block * whole + block[:rest]


def workspace_with_devserver(server, name: str, address: str = "127.0.0.1") -> str:
    """A running workspace whose dev server answers on ``address``:PORT inside it."""
    r = requests.post(f"{server.url}/perry/api/workspaces", json={"name": name}, headers=server.headers, timeout=600)
    assert r.status_code == 201, r.text
    container = f"{TEST_PREFIX}{name}"
    subprocess.run(["docker", "exec", "-i", "-u", "workspace", container, "sh", "-c", "cat > /tmp/devserver.py"],
                   input=DEVSERVER.read_bytes(), check=True)
    subprocess.run(["docker", "exec", "-d", "-u", "workspace", container, "python3", "/tmp/devserver.py", str(PORT)]
                   + ([address] if address != "127.0.0.1" else []), check=True)
    until(lambda: PORT in [p["port"] for p in ports(server, name)], timeout=30)
    return container


def ports(server, name: str) -> list[dict]:
    r = requests.get(f"{server.url}/perry/api/workspaces/{name}/ports", headers=server.headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["ports"]


def seen(container: str) -> list[str]:
    """What reached the dev server, asked inside the workspace (not through the proxy)."""
    out = subprocess.run(["docker", "exec", container, "curl", "-s", f"http://127.0.0.1:{PORT}/seen"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


# Two routes into a port (core/ports.py): a server listening on every address is connected to
# straight at the container's address (the engine is local here); one on 127.0.0.1 only is
# reached through the engine's exec. The user sees no difference: every test below runs on both.
ROUTES = pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"], ids=["tunnel", "direct"])


def route_taken(got: dict, address: str) -> None:
    """The dev server's peer tells the routes apart (127.0.0.1 is the tunnel's relay)."""
    assert (got["peer"] == "127.0.0.1") == (address == "127.0.0.1"), got["peer"]


@ROUTES
def test_http_through_the_proxy(server, served, address):
    web = "web" if address == "127.0.0.1" else "webany"
    container = workspace_with_devserver(server, web, address)
    base, auth = f"{server.url}/perry/proxy/{web}/{PORT}", server.headers

    listed = {p["port"]: p for p in ports(server, web)}
    assert listed[PORT]["command"].startswith(f"python3 /tmp/devserver.py {PORT}")
    assert listed[PORT]["addresses"] == [address]
    assert isinstance(listed[PORT]["pid"], int)
    assert 22 not in listed  # Perry's own sshd is not something the workspace serves
    table = subprocess.run([PERRY, "ports", web], env=served, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and str(PORT) in table.stdout and "devserver.py" in table.stdout, table

    # The prefix is stripped; the query passes; the server sees its own address as Host and
    # where the request came from in X-Forwarded-*; Jupyter's token stays on this side.
    r = requests.get(f"{base}/echo/a%20b/c?x=1&y=two", headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["method"], got["path"], got["query"]) == ("GET", "/echo/a%20b/c", "x=1&y=two")
    assert got["headers"]["host"] == f"127.0.0.1:{PORT}"
    route_taken(got, address)
    assert got["headers"]["x-forwarded-prefix"] == f"/perry/proxy/{web}/{PORT}"
    assert got["headers"]["x-forwarded-host"] == server.url.split("//")[1]
    assert "authorization" not in got["headers"]

    # proxy-absolute keeps the whole path.
    r = requests.get(f"{server.url}/perry/proxy-absolute/{web}/{PORT}/echo/kept", headers=auth, timeout=60)
    assert r.json()["path"] == f"/perry/proxy-absolute/{web}/{PORT}/echo/kept"

    # A body goes through whole, with any method.
    body = pattern(3 * 1024 * 1024 + 17)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = requests.request(method, f"{base}/echo/upload", data=body, headers=auth, timeout=60)
        assert r.status_code == 200, (method, r.text)
        assert (r.json()["method"], r.json()["length"], r.json()["sha256"]) == (
            method, len(body), hashlib.sha256(body).hexdigest())

    # A chunked upload (no Content-Length) arrives whole too.
    r = requests.post(f"{base}/echo/chunked", data=iter([b"one ", b"two ", b"three"]), headers=auth, timeout=60)
    assert r.json()["sha256"] == hashlib.sha256(b"one two three").hexdigest()

    # A page's root-relative links are put under the prefix (a bundled app's "/assets/..."); other
    # links, and pages behind proxy-absolute, are left as they are.
    # The proxy's script comes first in the page's <head>, told the prefix.
    r = requests.get(f"{base}/page", headers=auth, timeout=60)
    assert f'<script src="/perry/proxy/{web}/{PORT}/app.js">' in r.text and 'href="//elsewhere.example/x"' in r.text
    assert r.text.startswith(f'<html><head><script src="/perry/proxy.js" data-perry-prefix="/perry/proxy/{web}/{PORT}">'
                             '</script><script src="/perry/proxy/'), r.text
    r = requests.get(f"{server.url}/perry/proxy-absolute/{web}/{PORT}/page", headers=auth, timeout=60)
    assert '<script src="/app.js">' in r.text and "proxy.js" not in r.text
    r = requests.get(f"{base}/style.css", headers=auth, timeout=60)
    assert f"src:url(/perry/proxy/{web}/{PORT}/fonts/x.ttf)" in r.text and 'url("//cdn.example/b.png")' in r.text

    # A redirect stays under the proxy's prefix.
    r = requests.get(f"{base}/redirect", headers=auth, timeout=60, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == f"/perry/proxy/{web}/{PORT}/echo/landed"
    # Without the trailing slash, the proxy adds it (relative links then resolve under it).
    r = requests.get(base, headers=auth, timeout=60, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == f"/perry/proxy/{web}/{PORT}/"

    # 50 MB streamed through, byte for byte.
    digest, size = hashlib.sha256(), 0
    with requests.get(f"{base}/bytes?n={BIG}", headers=auth, timeout=120, stream=True) as r:
        assert r.status_code == 200 and r.headers["Content-Length"] == str(BIG)
        for chunk in r.iter_content(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    assert size == BIG and digest.hexdigest() == hashlib.sha256(pattern(BIG)).hexdigest()

    # A port nobody listens on: 502 naming the ports that do.
    r = requests.get(f"{server.url}/perry/proxy/{web}/8999/", headers=auth, timeout=60)
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "port_closed" and error["openPorts"] == [PORT]
    assert "8999" in error["message"] and str(PORT) in error["message"]

    # Bad names and ports are 400s that reach nothing.
    before = len(seen(container))
    assert requests.get(f"{server.url}/perry/proxy/{web}/99999/", headers=auth, timeout=60).status_code == 400
    assert requests.get(f"{server.url}/perry/proxy/{web}/http/", headers=auth, timeout=60).status_code == 400
    assert requests.get(f"{server.url}/perry/proxy/nosuch/{PORT}/", headers=auth, timeout=60).status_code == 404
    r = requests.get(f"{server.url}/perry/proxy/{web}", headers=auth, timeout=60)  # no port
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert len(seen(container)) == before


@ROUTES
def test_websocket_through_the_proxy(server, address):
    box = "wsbox" if address == "127.0.0.1" else "wsboxany"
    workspace_with_devserver(server, box, address)
    url = f"ws{server.url[4:]}/perry/proxy/{box}/{PORT}/ws"
    header = [f"{k}: {v}" for k, v in server.headers.items()]
    ws = websocket.create_connection(url, header=header, subprotocols=["other", "echo"], timeout=60)
    try:
        assert ws.subprotocol == "echo"
        ws.send("hello through the proxy")
        assert ws.recv() == "hello through the proxy"
        blob = pattern(300_000)
        ws.send_binary(blob)
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY and data == blob
    finally:
        ws.close()

    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=60)
    assert refused.value.status_code == 403


def test_the_proxys_script(server):
    """The script the proxied pages load: JavaScript behind Jupyter's auth, like the pages."""
    r = requests.get(f"{server.url}/perry/proxy.js", headers=server.headers, timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/javascript")
    assert "X-XSRFToken" in r.text and "perryPrefix" in r.text
    r = requests.get(f"{server.url}/perry/proxy.js", timeout=60, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=")


def test_auth_and_xsrf(server):
    container = workspace_with_devserver(server, "guard")
    base = f"{server.url}/perry/proxy/guard/{PORT}"

    # No credentials: a browser is sent to the login page, a POST is refused; nothing reaches the port.
    r = requests.get(f"{base}/echo/secret", timeout=60, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=")
    r = requests.post(f"{base}/echo/secret", data=b"x", timeout=60, allow_redirects=False)
    assert r.status_code == 403
    r = requests.post(f"{base}/echo/secret", data=b"x", headers={"Authorization": "token wrong"}, timeout=60)
    assert r.status_code == 403
    assert seen(container) == []

    # A logged-in browser (the login cookie a token request leaves): GET works, and neither the
    # login cookie nor the XSRF cookie reaches the workspace; other cookies do.
    browser = requests.Session()
    browser.get(f"{server.url}/api/status", headers=server.headers, timeout=60)
    assert any(c.name.startswith("username-") for c in browser.cookies)
    browser.cookies.set("_xsrf", "7e57c0ffee")
    browser.cookies.set("app", "mine")
    r = browser.get(f"{base}/echo/home", timeout=60, allow_redirects=False)
    assert r.status_code == 200, r.text
    assert r.json()["headers"]["cookie"] == "app=mine"

    # An unsafe method from a cookie session needs Jupyter's XSRF token, as Jupyter's own routes do.
    r = browser.post(f"{base}/echo/form", data=b"x", timeout=60, allow_redirects=False)
    assert r.status_code == 403
    assert "POST /echo/form" not in seen(container)
    r = browser.post(f"{base}/echo/form", data=b"x", headers={"X-XSRFToken": "7e57c0ffee"}, timeout=60)
    assert r.status_code == 200 and r.json()["length"] == 1
    assert seen(container).count("POST /echo/form") == 1

    # A WebSocket from a foreign page, with the login cookie, is refused before it reaches the port.
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"ws{base[4:]}/ws", cookie=cookie, origin="http://evil.example", timeout=60)
    assert refused.value.status_code == 403
    assert "GET /ws" not in seen(container)


def test_perry_forward(server, served):
    workspace_with_devserver(server, "fwd")
    local = free_port()
    proc = subprocess.Popen([PERRY, "forward", "fwd", str(PORT), "--local", str(local)], env=served,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{local} -> fwd:{PORT}" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        r = requests.post(f"http://127.0.0.1:{local}/echo/through?x=1", data=b"forwarded", timeout=60)
        assert r.status_code == 200
        assert (r.json()["path"], r.json()["query"], r.json()["length"]) == ("/echo/through", "x=1", 9)
        digest = hashlib.sha256()
        with requests.get(f"http://127.0.0.1:{local}/bytes?n={BIG}", timeout=120, stream=True) as r:
            for chunk in r.iter_content(1 << 20):
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(pattern(BIG)).hexdigest()
        # Several connections at once, each its own tunnel.
        with requests.Session() as a, requests.Session() as b:
            assert a.get(f"http://127.0.0.1:{local}/echo/a", timeout=60).json()["path"] == "/echo/a"
            assert b.get(f"http://127.0.0.1:{local}/echo/b", timeout=60).json()["path"] == "/echo/b"
    finally:
        proc.send_signal(2)  # Ctrl-C
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0
    time.sleep(0.2)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{local}/echo/after", timeout=5)

    # A port nobody listens on: the connection is closed and the CLI says why.
    proc = subprocess.Popen([PERRY, "forward", "fwd", "8999", "--local", str(local)], env=served,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{local}/", timeout=60)
    finally:
        proc.send_signal(2)
        proc.wait(15)
    assert "nothing answers on port 8999" in proc.stderr.read()
