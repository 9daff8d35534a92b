"""makemore serve over HTTP: a live server on a free port, parallel clients, limits, paths that try
to leave the package, methods, errors without tracebacks, and the command itself."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from makemore.cli import main
from makemore.serve import params


def request(server, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
    """(status, headers (case-insensitive), body bytes) of one request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    try:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.headers, response.read()  # header names: any case (HTTP's rule)
    finally:
        connection.close()


def error_of(answer) -> str:
    status, headers, body = answer
    assert headers["Content-Type"] == "application/json" and status >= 400
    message = json.loads(body)["error"]
    assert "\n" not in message and "Traceback" not in message
    return message


def test_the_page_and_its_files_are_served_from_the_package(live):
    status, headers, page = request(live, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    for needed in (b'id="run-select"', b'id="generate-button"', b'id="strip"', b'src="/static/app.js"'):
        assert needed in page
    assert b"http" not in page.replace(b"http-equiv", b"")  # nothing from a CDN: works offline
    for path, kind in (("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")):
        status, headers, body = request(live, "GET", path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
    status, headers, body = request(live, "HEAD", "/")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(page)


def test_parallel_clients_all_get_their_answers(live, app):
    bodies = [{"n": 10, "seed": i % 3, "suffix": "a"} for i in range(4)] + [{"text": "abc"}, {"run": 1, "text": "ab"}]
    expected = [app.generate(b) if "n" in b else app.score(b) for b in bodies]

    def client(k: int) -> list[bool]:
        ok = []
        for i in range(10):
            j = (k + i) % len(bodies)
            status, _, body = request(live, "POST", "/api/generate" if "n" in bodies[j] else "/api/score", bodies[j])
            answer = json.loads(body)
            if "stats" in answer:
                answer["stats"]["seconds"] = expected[j]["stats"]["seconds"]
            ok.append(status == 200 and answer == expected[j])
        return ok

    with ThreadPoolExecutor(8) as pool:
        results = [ok for oks in pool.map(client, range(8)) for ok in oks]
    assert len(results) == 80 and all(results)


TRAVERSALS = [
    "/static/../../etc/passwd",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2fetc%2fpasswd",
    "//etc/passwd",
    "/static//etc/passwd",
    "/static/app.js/../../../../etc/passwd",
    "/api/plot/bigram?run=../../etc/passwd",
    "/api/plot/..%2f..%2fetc%2fpasswd?run=0",
    "/api/info?run=/etc/passwd",
    "/api/plot/loss?run=0&file=/etc/passwd",
    "/../../../../etc/passwd",
    "/static/index.html",  # the page is at /, its files are named
    "/static/params.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_leaves_the_routes(live, path):
    status, _, body = request(live, "GET", path)
    assert status in (400, 404) and b"root:" not in body
    assert error_of((status, {"Content-Type": "application/json"}, body))


def test_unknown_paths_are_404_and_wrong_methods_405(live):
    assert request(live, "GET", "/api/nothing")[0] == 404
    assert request(live, "POST", "/api/nothing", {"n": 1})[0] == 404
    status, headers, _ = request(live, "GET", "/api/generate")
    assert status == 405 and headers["Allow"] == "POST"
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, body = request(live, method, "/api/runs", {})
        assert status == 405 and headers["Allow"] == "GET, HEAD" and "not allowed" in error_of((status, headers, body))


def test_bodies_over_the_limit_or_not_json_objects_are_refused(live):
    over = b"{" + b" " * params.MAX_BODY + b"}"
    status, headers, body = request(live, "POST", "/api/generate", raw=over)
    assert status == 413 and "at most 65,536" in error_of((status, headers, body))
    for raw, match in ((b"{", "not valid JSON"), (b"[1]", "JSON object"), (b"\xff", "UTF-8"), (b"[" * 5000, "JSON")):
        answer = request(live, "POST", "/api/score", raw=raw)
        assert answer[0] == 400 and match in error_of(answer)
    answer = request(live, "POST", "/api/generate", {"n": 5000})
    assert answer[0] == 400 and error_of(answer).startswith("n: at most 1000")


def chunked(port: int, chunks: list[bytes], end: bool = True) -> bytes:
    """The raw answer to a POST /api/score whose body is sent in ``chunks`` (Transfer-Encoding: chunked),
    ended by the last chunk when ``end``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = b"POST /api/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
        for chunk in [*chunks, b""] if end else chunks:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply and (data := sock.recv(65536)):
            reply += data
        head, _, body = reply.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < length and (data := sock.recv(65536)):
            body += data
        return head + b"\r\n\r\n" + body


def test_a_chunked_body_is_read_and_counted_against_the_limit(live):
    """uvicorn reads chunked bodies; the server counts them as they come (413 once over, connection closed)."""
    reply = chunked(live.server_address[1], [b'{"text":', b' "abc"}'])
    assert reply.startswith(b"HTTP/1.1 200") and b'"word": "abc"' in reply
    reply = chunked(live.server_address[1], [b"{" + b" " * 40_000] * 2, end=False)  # answered before its end
    assert reply.startswith(b"HTTP/1.1 413") and b"connection: close" in reply.lower() and b"at most 65,536" in reply


def test_one_connection_carries_several_requests_errors_included(live):
    connection = http.client.HTTPConnection("127.0.0.1", live.server_address[1], timeout=30)
    try:
        for body, status in (({"text": "abc"}, 200), ({"text": ""}, 400), ({"text": "cab"}, 200)):
            connection.request(
                "POST", "/api/score", body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            assert response.status == status and json.loads(response.read())
    finally:
        connection.close()


def test_answers_on_a_kept_alive_connection_do_not_wait_for_delayed_acks(live):
    """Headers and body go out in two writes: without TCP_NODELAY each answer waited ~40 ms for the client's ACK."""
    connection = http.client.HTTPConnection("127.0.0.1", live.server_address[1], timeout=30)
    try:
        times = []
        for _ in range(15):
            started = time.perf_counter()
            connection.request("GET", "/api/options")
            response = connection.getresponse()
            assert response.status == 200 and response.read()
            times.append(time.perf_counter() - started)
    finally:
        connection.close()
    assert sorted(times)[len(times) // 2] < 0.02, times


def test_an_unexpected_error_is_a_500_without_a_traceback(live, monkeypatch, capsys):
    def broken(body):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(live.app, "score", broken)
    answer = request(live, "POST", "/api/score", {"text": "abc"})
    assert answer[0] == 500 and error_of(answer) == "internal error"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: boom second line" in err and "Traceback" not in err


def test_a_foreign_host_header_is_refused_on_loopback(live):
    port = live.server_address[1]
    answer = request(live, "GET", "/api/runs", headers={"Host": f"attacker.example:{port}"})
    assert answer[0] == 403 and "Host" in error_of(answer)
    for host in (f"localhost:{port}", "127.0.0.1", f"[::1]:{port}"):
        assert request(live, "GET", "/api/runs", headers={"Host": host})[0] == 200
    for host in (f"localhost:{port + 1}", "127.0.0.1.evil.com", f"127.0.0.1.nip.io:{port}"):
        answer = request(live, "GET", "/api/runs", headers={"Host": host})
        assert answer[0] == 403 and error_of(answer).startswith("Host: ")


def test_serve_off_loopback_prints_a_url_with_a_token_requires_it_and_stops_cleanly_on_ctrl_c(trained_run):
    command = [sys.executable, "-m", "makemore", "serve", str(trained_run.out_dir), "--host", "0.0.0.0", "--port", "0"]
    # SIGINT at its default in the server, as a terminal's Ctrl-C finds it (a background job's is ignored)
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        lines = [proc.stderr.readline() for _ in range(3)]
        assert lines[0].startswith("makemore: note: --host 0.0.0.0: other machines can reach this server; every")
        assert lines[1].startswith("serving 1 run at http://0.0.0.0:") and lines[2].startswith("  0  run  mlp, ")
        url = urllib.parse.urlsplit(lines[1].split(" at ", 1)[1].strip())
        token = urllib.parse.parse_qs(url.query)["token"][0]
        assert url.path == "/" and len(token) == 32  # 24 random bytes, URL-safe base64
        connection = http.client.HTTPConnection("127.0.0.1", url.port, timeout=30)
        connection.request("GET", "/api/runs", headers={"Host": "192.0.2.1"})  # any host name off loopback
        response = connection.getresponse()
        assert response.status == 401 and json.loads(response.read())["error"].startswith("token: ")
        connection.request("GET", f"/api/runs?token={token}", headers={"Host": "192.0.2.1"})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["runs"][0]["model"] == "mlp"
        connection.close()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err and out == ""
    assert err.splitlines()[-1] == "makemore: serve: stopped"


def test_a_port_in_use_is_one_line_and_exit_2(trained_run, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(trained_run.out_dir), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"makemore: error: --port: {port} is in use on 127.0.0.1\n"
