"""GET /api/export: the page's "Download this generator" (makemore export's bytes, as a download)."""

from __future__ import annotations

import json

from tests.serve.test_server import error_of, request


def test_the_generator_of_a_run_downloads_as_one_html_file(live, app):
    status, headers, body = request(live, "GET", "/api/export?run=0&weights=float16")
    assert status == 200 and headers["Content-Disposition"] == "attachment; filename*=UTF-8''run.html"
    assert body.lower().startswith(b"<!doctype html>") and b"makemoreGenerate" in body
    assert request(live, "GET", "/api/export?run=0&weights=float16")[2] == body  # made once, then kept
    status, headers, module = request(live, "GET", "/api/export?run=0&format=js")
    assert (
        status == 200 and headers["Content-Disposition"].endswith("run.mjs") and b"export function generate" in module
    )


def test_bad_export_requests_are_400s_naming_the_field(live):
    assert error_of(request(live, "GET", "/api/export?run=0&weights=int4")).startswith("ExportConfig.weights: ")
    assert "format" in error_of(request(live, "GET", "/api/export?run=0&format=pdf"))
    assert error_of(request(live, "GET", "/api/export?run=0&path=/etc/passwd")).startswith("path: unknown field")
    assert "run" in error_of(request(live, "GET", "/api/export?run=7"))
    answer = request(live, "GET", "/api/export?run=0&format=arpa")
    assert answer[0] == 400 and "not a count n-gram model" in json.loads(answer[2])["error"]
