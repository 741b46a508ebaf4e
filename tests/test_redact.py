"""palaver.redact: personal data out of default logs, query strings out of uvicorn's lines."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from palaver import redact
from palaver.redact import (
    QueryStringFilter,
    configure,
    new_error_id,
    pii,
    redact_urls,
    safe_url,
    scrub_urls,
    server_error_message,
    showing_pii,
    url_for_log,
)

TOKEN = re.compile(r"^<pii:[0-9a-f]{8}>$")


@pytest.fixture(autouse=True)
def _redaction_restored() -> Iterator[None]:
    before = showing_pii()
    yield
    configure(log_pii=before)


@pytest.fixture
def shown() -> None:
    configure(log_pii=True)


def test_redaction_is_on_until_configured_otherwise() -> None:
    assert redact._show_pii is False  # the module's own default, whatever a test did before
    assert TOKEN.match(pii("+14155550123"))


def test_pii_is_a_short_stable_hash_that_hides_the_value() -> None:
    first, again, other = pii("+14155550123"), pii("+14155550123"), pii("+14155550124")
    assert TOKEN.match(first) and first == again  # lines about one caller can be correlated
    assert other != first
    assert "4155550123" not in first
    assert pii(4711) == pii("4711")  # anything is logged as its text
    assert pii("") == ""  # nothing personal in nothing


def test_pii_shows_the_value_when_configured(shown: None) -> None:
    assert showing_pii()
    assert pii("+14155550123") == "+14155550123"
    assert pii(4711) == "4711"


def test_url_for_log_drops_userinfo_and_hides_the_query() -> None:
    url = "https://bob:s3cret@hooks.example.com:8443/palaver/incoming?token=abc123&x=1#frag"
    shown = url_for_log(url)
    assert shown == f"https://hooks.example.com:8443/palaver/incoming?{pii('token=abc123&x=1')}"
    for secret in ("bob", "s3cret", "abc123", "frag"):
        assert secret not in shown
    assert url_for_log("http://127.0.0.1:9000/hook") == "http://127.0.0.1:9000/hook"
    assert url_for_log("http://[::1]:9000/h?k=v") == f"http://[::1]:9000/h?{pii('k=v')}"
    broken = "http://[::1/h?k=v"  # urlsplit refuses it: hidden whole
    assert url_for_log(broken) == pii(broken)


def test_url_for_log_shows_the_whole_url_when_configured(shown: None) -> None:
    url = "https://bob:s3cret@hooks.example.com/incoming?token=abc123"
    assert url_for_log(url) == url


def test_scrub_urls_inside_text() -> None:
    text = "ConnectError: cannot reach 'https://u:p@hooks.example.com/in?token=abc123' (refused)"
    scrubbed = scrub_urls(text)
    assert scrubbed == (
        f"ConnectError: cannot reach 'https://hooks.example.com/in?{pii('token=abc123')}' (refused)"
    )
    assert scrub_urls("no url here: 503") == "no url here: 503"


def test_error_ids_are_fresh_and_named_in_the_message() -> None:
    ids = {new_error_id() for _ in range(100)}
    assert len(ids) == 100 and all(re.fullmatch(r"err_[0-9a-f]{12}", i) for i in ids)
    assert server_error_message("The response", "err_0123456789ab") == (
        "The response failed because of a server error (error id err_0123456789ab)."
    )


def _access_record(path: str) -> logging.LogRecord:
    # What uvicorn's HTTP protocols log: (client_addr, method, full_path, http_version, status).
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:50000", "GET", path, "1.1", 200),
        None,
    )


def test_query_string_filter_hides_uvicorn_access_queries() -> None:
    record = _access_record("/v1/realtime?model=gpt-realtime&api_key=sk-abc")
    assert QueryStringFilter().filter(record) is True  # never drops a line
    line = record.getMessage()
    assert (
        line
        == f'127.0.0.1:50000 - "GET /v1/realtime?{pii("model=gpt-realtime&api_key=sk-abc")} HTTP/1.1" 200'
    )
    assert "sk-abc" not in line and "model=" not in line
    plain = _access_record("/v1/realtime/calls/rtc_1/accept")
    QueryStringFilter().filter(plain)
    assert plain.getMessage() == '127.0.0.1:50000 - "GET /v1/realtime/calls/rtc_1/accept HTTP/1.1" 200'


def test_query_string_filter_hides_websocket_handshake_queries() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:50000", "/v1/realtime?api_key=sk-abc"),
        None,
    )
    QueryStringFilter().filter(record)
    assert (
        record.getMessage()
        == f'127.0.0.1:50000 - "WebSocket /v1/realtime?{pii("api_key=sk-abc")}" [accepted]'
    )


def test_query_string_filter_hides_httpx_request_url_queries() -> None:
    url = httpx.URL("https://hooks.example.com/palaver?token=abc123")
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        'HTTP Request: %s %s "%s %d %s"',
        ("POST", url, "HTTP/1.1", 200, "OK"),
        None,
    )
    QueryStringFilter().filter(record)
    assert record.getMessage() == (
        f'HTTP Request: POST https://hooks.example.com/palaver?{pii("token=abc123")} "HTTP/1.1 200 OK"'
    )
    text = _access_record("/x")  # a URL given as a string is hidden the same way; other text is not
    text.args = ("http://u:pw@h:1/p?q=1", "not a url", 3)
    text.msg = "%s %s %d"
    QueryStringFilter().filter(text)
    assert text.getMessage() == f"http://h:1/p?{pii('q=1')} not a url 3"


def test_query_string_filter_shows_queries_when_configured(shown: None) -> None:
    record = _access_record("/v1/realtime?api_key=sk-abc")
    QueryStringFilter().filter(record)
    assert "api_key=sk-abc" in record.getMessage()


def test_configure_installs_the_filter_once_on_uvicorns_loggers(caplog: pytest.LogCaptureFixture) -> None:
    configure(log_pii=False)
    configure(log_pii=False)
    for name in redact.FILTERED_LOGGERS:
        filters = [f for f in logging.getLogger(name).filters if isinstance(f, QueryStringFilter)]
        assert len(filters) == 1, name
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/v1/models?api_key=sk-abc", "1.1", 200
        )
    assert "/v1/models?<pii:" in caplog.text and "sk-abc" not in caplog.text


def test_safe_url_drops_userinfo_query_and_fragment_whatever_the_switch(shown: None) -> None:
    assert safe_url("https://user:pw@mcp.example.com:8443/v1/mcp?api_key=SECRET#frag") == (
        "https://mcp.example.com:8443/v1/mcp?…"
    )
    assert safe_url("http://[::1]:8000/mcp") == "http://[::1]:8000/mcp"
    assert safe_url("http://[::1") == "<invalid URL>"


def test_redact_urls_in_text_a_client_reads() -> None:
    text = "Client error '401' for url 'http://u:p@127.0.0.1:9/mcp?api_key=SECRET#x' and https://a.test/p"
    assert redact_urls(text) == "Client error '401' for url 'http://127.0.0.1:9/mcp?…' and https://a.test/p"


def test_query_string_filter_hides_urls_formatted_into_the_message() -> None:
    record = logging.LogRecord(
        "mcp.client.streamable_http",
        logging.INFO,
        __file__,
        1,
        "Redirected to http://h/mcp?api_key=S",
        None,
        None,
    )
    QueryStringFilter().filter(record)
    assert record.getMessage() == f"Redirected to http://h/mcp?{pii('api_key=S')}"


def test_the_mcp_client_puts_the_filter_on_its_libraries_loggers() -> None:
    import palaver.tools.mcp_connection  # noqa: F401  (installs the filter at import)

    for name in ("httpx2", "mcp.client.streamable_http", "mcp.client.sse"):
        filters = [f for f in logging.getLogger(name).filters if isinstance(f, QueryStringFilter)]
        assert len(filters) == 1, name
