"""What the logs and the clients are shown: personal data redacted, internal errors behind an id.

Personal data (phone numbers and caller ids, SIP URIs and headers, REFER targets, DTMF digits,
tool arguments, transcripts, URLs' query strings and userinfo) goes into a log line only through
:func:`pii` or :func:`url_for_log`. By default they give a short keyed hash instead of the value,
``<pii:3f9a1c07>``: the same value gives the same hash on every line of one process, so the lines
of one caller can be followed, but the value cannot be read back (the key is random per process,
so a restart changes the hashes and a phone number cannot be found by hashing every number).

Redaction is one process-wide switch, on unless :func:`configure` turns it off; ``palaver serve``
calls ``configure(log_pii=settings.log_pii)`` once at startup (``PALAVER_LOG_PII=true``). Code that
never calls it (an embedding application, unit tests) redacts. The pure cores need no settings.

Clients never get internal exception text: a failure they did not cause is answered with
:func:`server_error_message` naming an :func:`new_error_id`, and the same id is logged beside the
exception.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import TypeGuard
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "QueryStringFilter",
    "configure",
    "install_filter",
    "new_error_id",
    "pii",
    "redact_urls",
    "safe_url",
    "scrub_urls",
    "server_error_message",
    "showing_pii",
    "url_for_log",
]

#: The loggers of other libraries whose lines carry URLs or request paths with their query
#: (``?api_key=…``, a webhook's ``?token=…``): uvicorn's access log, its error log (where it writes
#: the WebSocket handshakes), and httpx's (``HTTP Request: POST <url> …``; the openai SDK's is httpx2).
FILTERED_LOGGERS = ("uvicorn.access", "uvicorn.error", "httpx", "httpx2")

_KEY = secrets.token_bytes(16)
_HASH_BYTES = 4
_show_pii = False

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>]+")


def configure(*, log_pii: bool) -> None:
    """Set the switch (at startup) and install :class:`QueryStringFilter` on :data:`FILTERED_LOGGERS`."""
    global _show_pii
    _show_pii = log_pii
    install_filter(*FILTERED_LOGGERS)


def install_filter(*names: str) -> None:
    """Put one :class:`QueryStringFilter` on each named logger (a module whose library logs URLs
    calls it at import, so the filter is there even where :func:`configure` never runs)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryStringFilter) for f in logger.filters):
            logger.addFilter(QueryStringFilter())


def showing_pii() -> bool:
    """Whether logs show personal data as it is (``PALAVER_LOG_PII=true``)."""
    return _show_pii


def pii(value: object) -> str:
    """``value`` for a log line: itself when PII logging is on, else ``<pii:xxxxxxxx>``.

    The hash is a keyed BLAKE2s of the text, stable within the process. An empty value is not
    personal and stays empty, so a missing number still reads as missing."""
    text = value if isinstance(value, str) else str(value)
    if _show_pii or not text:
        return text
    digest = hashlib.blake2s(
        text.encode("utf-8", "surrogatepass"), key=_KEY, digest_size=_HASH_BYTES
    ).hexdigest()
    return f"<pii:{digest}>"


def url_for_log(url: str) -> str:
    """``url`` without its userinfo and fragment, its query string replaced by its :func:`pii`
    hash (webhook URLs with ``?token=``); the whole URL when PII logging is on."""
    if _show_pii:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:  # not a URL we can take apart: hide it whole
        return pii(url)
    netloc = parts.netloc.rpartition("@")[2] if host is None else _netloc(host, port)
    query = pii(parts.query) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def safe_url(url: str) -> str:
    """``url`` as a client or a log may always be shown it, whatever ``PALAVER_LOG_PII`` says:
    without userinfo, query or fragment (they carry secrets); ``?…`` marks a query left out."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    return urlunsplit((parts.scheme, _netloc(host, port), parts.path, "", "")) + ("?…" if parts.query else "")


def redact_urls(text: str) -> str:
    """``text`` (an error message a client will read) with every URL in it as :func:`safe_url`
    shows it."""
    return _URL.sub(lambda found: safe_url(found.group(0)), text)


def scrub_urls(text: str) -> str:
    """``text`` (an exception's message, say) with every URL in it passed through :func:`url_for_log`."""
    if _show_pii:
        return text
    return _URL.sub(lambda found: url_for_log(found.group(0)), text)


def new_error_id() -> str:
    """A fresh id naming one server-side failure, told to the client and logged beside it."""
    return f"err_{secrets.token_hex(6)}"


def server_error_message(what: str, error_id: str) -> str:
    """The generic text a client gets for a failure it did not cause: ``what`` ("The response")
    failed, and the id an operator finds in the log."""
    return f"{what} failed because of a server error (error id {error_id})."


class QueryStringFilter(logging.Filter):
    """Hides the query strings (and userinfo) in other libraries' log lines.

    uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with (client_addr, method, full_path, http_version,
    status) as arguments, and ``'%s - "WebSocket %s" …'`` likewise: every argument that is a path
    with a query (``/v1/realtime?model=…&api_key=…``) gets the query's :func:`pii` hash instead.
    httpx logs ``'HTTP Request: %s %s …'`` with the request's URL object: every argument that is a
    URL goes through :func:`url_for_log`. A URL formatted into the message itself (the ``mcp``
    SDK's redirect lines) goes through it too. It never drops a line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _show_pii:
            return True
        if isinstance(record.args, tuple) and any(
            _is_path_with_query(arg) or _is_url(arg) for arg in record.args
        ):
            record.args = tuple(_arg_for_log(arg) for arg in record.args)
        if not record.args and isinstance(record.msg, str) and "://" in record.msg:
            record.msg = scrub_urls(record.msg)
        return True


def _arg_for_log(value: object) -> object:
    if _is_path_with_query(value):
        return _path_for_log(value)
    if _is_url(value):
        return url_for_log(str(value))
    return value


def _is_path_with_query(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith("/") and "?" in value


def _is_url(value: object) -> bool:
    """A URL string, or a URL object (httpx.URL) that prints as one."""
    if isinstance(value, str):
        return "://" in value and _URL.fullmatch(value) is not None
    return type(value).__name__ == "URL" and "://" in str(value)


def _path_for_log(path: str) -> str:
    head, _, query = path.partition("?")
    return f"{head}?{pii(query)}" if query else head


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"
