"""The server's Guard on every route (serve's and those a caller adds, as the studio does): the token
(query, header, cookie), the Origin and content type of state-changing requests, upload paths, body
limits before the body is read, and errors as one JSON line. Starlette's TestClient where the client
does not matter; a live socket for the Host header, the cookie and bodies that are still arriving."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from makemore.serve import App, make_server
from makemore.serve.params import MAX_BODY, RequestError
from makemore.serve.server import json_response, query_of, read_json

TOKEN = "test-token_0123456789"
UPLOAD_LIMIT = 100_000


async def echo(request):
    return json_response(200, await read_json(request))


async def upload(request):
    form = await request.form()
    return json_response(201, {"bytes": len(await form["file"].read()), "name": form["name"]})


async def query(request):
    return json_response(200, query_of(request))


async def boom(request):
    raise RuntimeError("boom\nsecond line")


async def busy(request):
    raise RequestError(409, "busy\nright now")


ROUTES = [
    Route("/echo", echo, methods=["POST"]),
    Route("/upload", upload, methods=["POST"]),
    Route("/query", query, methods=["GET"]),
    Route("/boom", boom, methods=["GET"]),
    Route("/busy", busy, methods=["POST"]),
]


@pytest.fixture(scope="module")
def guarded():
    """A live server with a token, the routes above and one upload path (no runs: the Guard is what is tested)."""
    server = make_server(
        App([]), "127.0.0.1", 0, quiet=True, token=TOKEN, routes=ROUTES, upload_paths={"/upload": UPLOAD_LIMIT}
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(guarded):
    """A TestClient of the server's app, naming the server's own address (its Host is answered)."""
    origin = f"http://127.0.0.1:{guarded.server_address[1]}"
    with TestClient(guarded.asgi, base_url=origin, headers={"Authorization": f"Bearer {TOKEN}"}) as test_client:
        yield test_client


def error(response, status: int) -> str:
    """The one-line error of a JSON error answer with ``status``."""
    assert response.status_code == status and response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store" and response.headers["x-content-type-options"] == "nosniff"
    message = response.json()["error"]
    assert "\n" not in message and "Traceback" not in message
    return message


def test_the_url_carries_the_token(guarded):
    assert guarded.url == f"http://127.0.0.1:{guarded.server_address[1]}/?token={TOKEN}"


def test_a_request_without_the_right_token_is_a_401(client):
    del client.headers["Authorization"]
    for path in ("/", "/api/runs", "/query", f"/query?token={TOKEN}x", "/query?token="):
        assert error(client.get(path), 401).startswith("token: missing or wrong")
    assert error(client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN[:-1]}"}), 401)
    assert error(client.get("/api/runs", headers={"Authorization": TOKEN}), 401)  # not 'Bearer TOKEN'
    client.cookies.set("makemore_token", "nope")
    assert error(client.get("/api/runs"), 401)
    assert error(client.post("/echo", json={}), 401)  # before the body's checks


def test_the_token_by_query_header_or_cookie_is_accepted_and_the_query_sets_the_cookie(client):
    del client.headers["Authorization"]
    answer = client.get(f"/query?token={TOKEN}&run=0")
    assert answer.status_code == 200 and answer.json() == {"run": "0"}  # the routes never see the token
    cookie = answer.headers["set-cookie"]
    assert cookie == f"makemore_token={TOKEN}; HttpOnly; SameSite=Strict; Path=/"
    client.cookies.clear()
    answer = client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and "set-cookie" not in answer.headers
    client.cookies.clear()
    client.cookies.set("makemore_token", TOKEN)
    answer = client.get("/api/runs")
    assert answer.status_code == 200 and answer.json() == {"runs": []}


def test_a_foreign_origin_cannot_change_state_even_with_the_token(client, guarded):
    port = guarded.server_address[1]
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{port + 1}", f"https://127.0.0.1:{port}"):
        message = error(client.post("/echo", json={"a": 1}, headers={"Origin": origin}), 403)
        assert message.startswith("Origin: ") and "not this server's own" in message
    answer = client.post("/echo", json={"a": 1}, headers={"Origin": f"http://127.0.0.1:{port}"})
    assert answer.status_code == 200 and answer.json() == {"a": 1}
    assert client.post("/echo", json={"a": 2}).json() == {"a": 2}  # no Origin: not a browser's cross-site request
    assert client.get("/api/runs", headers={"Origin": "http://evil.example"}).status_code == 200  # reads: Host check


@pytest.mark.parametrize(
    "kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
def test_a_state_changing_request_must_send_json(client, kind):
    headers = {} if kind is None else {"Content-Type": kind}
    message = error(client.post("/echo", content=b'{"a": 1}', headers=headers), 415)
    assert message.startswith("Content-Type: the body must be application/json, got ")


def test_json_with_a_charset_is_json(client):
    answer = client.post(
        "/echo", content=b'{"a": "\xc3\xa9"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert answer.status_code == 200 and answer.json() == {"a": "é"}


def test_an_upload_path_takes_multipart_with_the_custom_header_only(client):
    files = {"file": ("names.txt", b"ada\nbob\n", "text/plain")}
    answer = client.post("/upload", files=files, data={"name": "list"}, headers={"X-Makemore": "1"})
    assert answer.status_code == 201 and answer.json() == {"bytes": 8, "name": "list"}
    assert error(client.post("/upload", files=files, data={"name": "list"}), 403).startswith("X-Makemore: ")
    assert error(client.post("/upload", files=files, headers={"X-Makemore": "2"}), 403).startswith("X-Makemore: ")
    message = error(client.post("/upload", json={"file": "ada"}, headers={"X-Makemore": "1"}), 415)
    assert message == "Content-Type: /upload takes multipart/form-data, got 'application/json'"
    big = {"file": ("names.txt", b"a\n" * UPLOAD_LIMIT, "text/plain")}
    message = error(client.post("/upload", files=big, headers={"X-Makemore": "1"}), 413)
    assert message.startswith("Content-Length: the body is ") and message.endswith(f"at most {UPLOAD_LIMIT:,}")


def test_a_json_body_over_the_limit_is_a_413(client):
    message = error(
        client.post("/echo", content=b"{" + b" " * MAX_BODY + b"}", headers={"Content-Type": "application/json"}), 413
    )
    assert message == f"Content-Length: the body is {MAX_BODY + 2:,} bytes; at most {MAX_BODY:,}"


def test_unknown_routes_wrong_methods_and_failing_routes_answer_json(client, capsys):
    assert error(client.get("/nothing"), 404) == "no such page: '/nothing'"
    assert error(client.post("/api/runs/", json={}), 404) == "no such page: '/api/runs/'"  # no redirect
    answer = client.get("/echo")
    assert error(answer, 405) == "GET is not allowed on /echo (use POST)" and answer.headers["allow"] == "POST"
    assert error(client.post("/busy", json={}), 409) == "busy right now"
    assert error(client.get("/boom"), 500) == "internal error"
    err = capsys.readouterr().err
    assert err == "makemore: serve: internal error in GET /boom: RuntimeError: boom second line\n"


def raw(port: int, data: bytes, wait: float = 10) -> bytes:
    """The answer to ``data`` sent on a new connection (headers and what body arrived within ``wait`` s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        reply = b""
        while b"\r\n\r\n" not in reply and (chunk := sock.recv(65536)):
            reply += chunk
        head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
        length = int(head.split("content-length: ", 1)[1].split("\r\n", 1)[0])
        while len(reply) - len(head) - 4 < length and (chunk := sock.recv(65536)):
            reply += chunk
    return reply


def test_a_huge_body_is_refused_before_it_is_sent(guarded):
    """The 413 comes while the client has sent only its headers and a little of the body."""
    port = guarded.server_address[1]
    for path, kind, limit in (
        ("/echo", "application/json", MAX_BODY),
        ("/upload", "multipart/form-data", UPLOAD_LIMIT),
    ):
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        head += f"Content-Type: {kind}; boundary=x\r\nX-Makemore: 1\r\nContent-Length: 50000000\r\n\r\n"
        started = time.perf_counter()
        reply = raw(port, head.encode() + b"x" * 1000)
        assert time.perf_counter() - started < 5 and reply.startswith(b"HTTP/1.1 413")
        assert b"connection: close" in reply and f"at most {limit:,}".encode() in reply


def test_a_streamed_body_is_cut_off_once_over_the_limit(guarded):
    """Chunked: no length to check first, so the bytes are counted as they arrive; the end is never sent."""
    port = guarded.server_address[1]
    head = f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\nX-Makemore: 1\r\n"
    head += "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"--x\r\n" + b"y" * 60_000
    body = b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(2))  # 120 kB, no last chunk
    reply = raw(port, head.encode() + body)
    assert reply.startswith(b"HTTP/1.1 413") and b"connection: close" in reply
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1]) == {
        "error": f"the body is over {UPLOAD_LIMIT:,} bytes; at most {UPLOAD_LIMIT:,}"
    }


def test_the_host_header_and_the_token_cookie_over_a_live_socket(guarded):
    port = guarded.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", f"/echo?token={TOKEN}", headers={"Host": f"evil.example:{port}"})
        response = connection.getresponse()  # DNS rebinding: a foreign Host is refused, token or not
        assert response.status == 403 and json.loads(response.read())["error"].startswith("Host: unexpected")
        connection.request("GET", f"/?token={TOKEN}")
        response = connection.getresponse()
        cookie = response.headers["Set-Cookie"]
        assert response.status == 200 and b"<html" in response.read()  # the page
        connection.request("GET", "/api/runs")
        response = connection.getresponse()
        assert response.status == 401 and json.loads(response.read())["error"].startswith("token: ")
        connection.request("GET", "/api/runs", headers={"Cookie": cookie.split(";", 1)[0]})  # as a browser sends it
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read()) == {"runs": []}
    finally:
        connection.close()
