"""makemore serve against hostile or malformed HTTP: DNS rebinding through the Host header, Content-Length
headers that are not numbers, request lines that are not HTTP/1.x. Every answer is a whole HTTP response
(status line, headers, a JSON body naming the problem), never a 500: h11 (under uvicorn) refuses what is
not HTTP/1.x with a 400 naming its reason, the server's Guard the rest."""

from __future__ import annotations

import json
import socket
import threading
from email.message import Message

import pytest

from makemore.serve import make_server
from makemore.serve import server as server_module


def exchange(port: int, data: bytes) -> tuple[int, Message, bytes]:
    """Send ``data`` raw on a new connection and read one answer: its head, then Content-Length bytes.

    The connection is not half-closed first: uvicorn takes a client's end of stream for a client gone.

    Returns:
        (status, headers (names in any case, as HTTP has them), body).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        reply = b""
        while b"\r\n\r\n" not in reply and (chunk := sock.recv(65536)):
            reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("iso-8859-1").split("\r\n")
        assert status_line.startswith("HTTP/1.1 "), reply[:200]
        headers = Message()
        for line in lines:
            name, value = line.split(": ", 1)
            headers[name] = value
        while len(body) < int(headers["Content-Length"]) and (chunk := sock.recv(65536)):
            body += chunk
    assert int(headers["Content-Length"]) == len(body), reply[:300]
    return int(status_line.split()[1]), headers, body


def get(port: int, *header_lines: str, version: str = "HTTP/1.1", path: str = "/api/runs"):
    lines = "".join(f"{line}\r\n" for line in header_lines)
    return exchange(port, f"GET {path} {version}\r\n{lines}\r\n".encode("iso-8859-1"))


def error_of(answer) -> str:
    status, headers, body = answer
    assert status >= 400 and headers["Content-Type"] == "application/json"
    message = json.loads(body)["error"]
    assert "\n" not in message and "Traceback" not in message and message != "internal error"
    return message


def runs_listed(answer) -> bool:
    status, _, body = answer
    return status == 200 and [r["id"] for r in json.loads(body)["runs"]] == [0, 1]


REBINDING = [  # (Host header, status): {port} is the server's port
    ("127.0.0.1.evil.com", 403),
    ("127.0.0.1.nip.io:{port}", 403),
    ("localhost.evil.com:{port}", 403),
    ("127.1", 403),  # inet_aton's spelling, not an IPv4 address
    ("127.0.0.01", 403),
    ("0x7f.0.0.1", 403),
    ("evil.com", 403),
    ("[::ffff:127.0.0.1]:{port}", 403),
    ("localhost:{other}", 403),  # another port: another server
    ("127.0.0.1:{other}", 403),
    ("[::1].evil.com", 400),
    ("[::1]evil.com", 400),
    ("[::1", 400),
    ("[127.0.0.1]", 400),
    ("[::1%25lo]:{port}", 400),
    ("::1", 400),
    ("localhost:", 400),
    ("localhost:80:80", 400),
    ("localhost:http", 400),
    ("localhost:\u00b2", 400),  # str.isdigit() says yes
    ("localhost:123456", 400),
    ("local host", 400),
    ("", 400),
]


@pytest.mark.parametrize(("host", "status"), REBINDING, ids=[h for h, _ in REBINDING])
def test_host_headers_that_do_not_name_this_server_are_refused(live, host, status):
    port = live.server_address[1]
    header = host.format(port=port, other=port + 1 if port < 65535 else port - 1)
    answer = get(port, f"Host: {header}")
    assert answer[0] == status and error_of(answer).startswith("Host: ")


ACCEPTED = ["localhost", "LocalHost:{port}", "127.0.0.1", "127.0.0.1:{port}", "127.255.3.4:{port}", "[::1]"]
ACCEPTED += ["[::1]:{port}", "[0:0::1]:{port}", " localhost:{port}\t"]


@pytest.mark.parametrize("host", ACCEPTED)
def test_loopback_names_and_addresses_on_this_port_are_answered(live, host):
    assert runs_listed(get(live.server_address[1], f"Host: {host.format(port=live.server_address[1])}"))


def test_a_request_has_exactly_one_host_header(live):
    """h11 (under uvicorn) refuses two Host headers, or none in HTTP/1.1, before the app sees the request."""
    port = live.server_address[1]
    for first, second in (("localhost", "evil.com"), ("localhost", "localhost"), ("evil.com", "localhost")):
        answer = get(port, f"Host: {first}", f"Host: {second}")
        assert answer[0] == 400 and error_of(answer).startswith("bad request: Found multiple Host: headers")
        assert answer[1]["Connection"] == "close"
    answer = get(port)
    assert answer[0] == 400 and error_of(answer).startswith("bad request: Missing mandatory Host: header")
    assert runs_listed(get(port, version="HTTP/1.0"))  # HTTP/1.0 has no Host header to require


def test_the_host_the_server_was_started_with_is_answered_too(app, monkeypatch):
    """``--host NAME`` where NAME is a loopback address: NAME (and only it, with localhost) is its name."""
    resolved = server_module.resolve("127.0.0.1", 0)
    monkeypatch.setattr(server_module, "resolve", lambda host, port: resolved)
    server = make_server(app, "Makemore.Test", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert runs_listed(get(port, f"Host: makemore.test:{port}"))
        assert runs_listed(get(port, "Host: MAKEMORE.TEST"))
        assert runs_listed(get(port, "Host: localhost"))
        assert get(port, "Host: other.test")[0] == 403
        assert get(port, "Host: makemore.test.evil.com")[0] == 403
    finally:
        server.shutdown()
        server.server_close()


def post_score(port: int, length_line: str) -> tuple[int, dict[str, str], bytes]:
    head = f"POST /api/score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{length_line}\r\n\r\n"
    head = head.encode("iso-8859-1")
    return exchange(port, head + b'{"text": "abc"}')


@pytest.mark.parametrize(
    "value",
    ["\u00b2", "1\u00b2", "+15", "-15", "1_5", "0x0f", "15.0", "15 15", "", "\u00bd"],
    ids=["superscript-2", "1-superscript-2", "plus", "minus", "underscore", "hex", "float", "two", "empty", "half"],
)
def test_a_content_length_that_is_not_ascii_digits_is_a_400_naming_it(live, value):
    status, headers, body = post_score(live.server_address[1], f"Content-Length: {value}")
    assert status == 400 and error_of((status, headers, body)).startswith("bad request: bad Content-Length")
    assert headers["Connection"] == "close"  # the body was not read: it must not be taken for a request


def test_content_length_digits_are_read_strictly_and_huge_ones_are_413(live):
    port = live.server_address[1]
    status, _, body = post_score(port, "Content-Length: 0015")  # leading zeros are digits still
    assert status == 200 and json.loads(body)["word"] == "abc"
    for value in ("9" * 5000, "1" + "0" * 30):  # h11 reads at most 20 digits
        answer = post_score(port, f"Content-Length: {value}")
        assert answer[0] == 400 and error_of(answer).startswith("bad request: bad Content-Length")
    for value in ("9" * 19, "65537"):
        answer = post_score(port, f"Content-Length: {value}")
        assert answer[0] == 413 and error_of(answer).startswith("Content-Length: the body is ")
        assert answer[1]["Connection"] == "close"
    answer = post_score(port, "Content-Length: 15\r\nContent-Length: 20")
    assert answer[0] == 400 and error_of(answer).startswith("bad request: conflicting Content-Length headers")
    head = b"POST /api/score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\r\n"
    answer = exchange(port, head)  # no length: an empty body
    assert answer[0] == 400 and error_of(answer).startswith("the body is not valid JSON")


ILLEGAL = "bad request: illegal request line: bytearray(b{!r}) (this server reads HTTP/1.0 and HTTP/1.1)"
BAD_LINES = [  # h11 refuses the line (a 400 naming it); the Guard refuses versions other than 1.0 and 1.1
    (b"GARBAGE", 400, ILLEGAL.format("GARBAGE")),
    (b"GET / HTTP/2.0", 505, "HTTP/2.0: this server reads HTTP/1.0 and HTTP/1.1"),
    (b"GET / HTTP/1.1 extra", 400, ILLEGAL.format("GET / HTTP/1.1 extra")),
    (b"GET / FOO/1.0", 400, ILLEGAL.format("GET / FOO/1.0")),
    (b"GET /api/runs", 400, ILLEGAL.format("GET /api/runs")),  # HTTP/0.9
    (b"POST /api/score", 400, ILLEGAL.format("POST /api/score")),
    (b"BREW /api/runs HTTP/1.1", 415, "Content-Type: the body must be application/json, got 'none'"),
]


@pytest.mark.parametrize(("line", "status", "message"), BAD_LINES, ids=[line.decode() for line, *_ in BAD_LINES])
def test_a_bad_request_line_gets_a_whole_http_answer(live, line, status, message):
    answer = exchange(live.server_address[1], line + b"\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert answer[0] == status and answer[1]["Connection"] == "close" and error_of(answer) == message


def test_an_unknown_method_with_a_json_body_is_a_405(live):
    line = b"BREW /api/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n"
    answer = exchange(live.server_address[1], line)
    assert answer[0] == 405 and answer[1]["Allow"] == "GET, HEAD" and "BREW is not allowed" in error_of(answer)


def test_a_target_that_is_not_a_path_is_a_400(live):
    port = live.server_address[1]
    for target in ("http://[::1/api/runs", "http://localhost/api/runs", "*"):  # urlsplit raised on the first
        answer = get(port, "Host: localhost", path=target)
        assert answer[0] == 400 and "request target" in error_of(answer)


def test_a_lone_surrogate_in_a_body_is_a_400(live):
    port = live.server_address[1]
    for body in (b'{"\\ud800": 1}', b'{"text": "a\\udc00"}'):  # the first closed the connection unanswered
        head = "POST /api/score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        answer = exchange(port, head.encode() + body)
        assert answer[0] == 400 and "surrogate" in error_of(answer)
