"""HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760; RFC 3261 §22), both sides.

Server side (``DigestServer``): challenges carry a stateless nonce, the
timestamp it was made at plus an HMAC of it under a per-server secret, so
verifying needs no table of issued nonces; a nonce older than ``nonce_ttl``
is *stale* (the client retries with the new nonce, without asking its user
again).  Without server state, a captured Authorization can be replayed
until its nonce goes stale; ``nc`` is not tracked.  Only ``qop=auth`` is
offered; credentials without qop (RFC 2069 style) are accepted too.

Client side (``authorization``): given one challenge, credentials, the
request's method and URI and a client nonce, the Authorization (or
Proxy-Authorization) value.  ``auth-int`` and the ``-sess`` algorithms are
supported here because a trunk may ask for them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from palaver.errors import SipError

from .challenge import AuthHeader, parse_auth_header, quote_string
from .errors import SipParseError
from .uri import parse_uri

__all__ = [
    "ALGORITHMS",
    "DigestError",
    "DigestServer",
    "Verdict",
    "Verification",
    "authorization",
    "choose_challenge",
    "digest_response",
]


def _hasher(name: str) -> Callable[[bytes], str]:
    def h(data: bytes) -> str:
        return hashlib.new(name, data).hexdigest()

    return h


ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "MD5": _hasher("md5"),
    "SHA-256": _hasher("sha256"),
    "SHA-512-256": _hasher("sha512_256"),
}
"""The hash of each supported algorithm name (without ``-sess``), as lower-case hex."""


class DigestError(SipError, ValueError):
    """A challenge this client cannot answer (unknown algorithm or qop)."""


def _algorithm(name: str | None) -> tuple[Callable[[bytes], str], bool]:
    """(hash, is-session-variant) for an ``algorithm`` value; MD5 when absent."""
    text = (name or "MD5").upper()
    sess = text.endswith("-SESS")
    base = text[: -len("-SESS")] if sess else text
    if base not in ALGORITHMS:
        raise DigestError(f"unsupported digest algorithm {name!r}")
    return ALGORITHMS[base], sess


def digest_response(
    *,
    algorithm: str | None,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value (RFC 2617 §3.2.2, RFC 7616 §3.4.1).

    A1 = user:realm:password (for ``-sess``: H(A1):nonce:cnonce);
    A2 = method:uri (``auth-int``: method:uri:H(body));
    response = H(H(A1):nonce:nc:cnonce:qop:H(A2)), or H(H(A1):nonce:H(A2)) without qop.
    """
    h, sess = _algorithm(algorithm)
    ha1 = h(f"{username}:{realm}:{password}".encode())
    if sess:
        ha1 = h(f"{ha1}:{nonce}:{cnonce or ''}".encode())
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + h(body)
    ha2 = h(a2.encode())
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{ha2}".encode())


# --- client side ---------------------------------------------------------------------------


def choose_challenge(values: Iterable[str], header: str = "WWW-Authenticate") -> AuthHeader | None:
    """The first Digest challenge whose algorithm and qop we support (RFC 8760 §2.4), or None."""
    for value in values:
        try:
            challenge = parse_auth_header(value, header)
        except SipParseError:
            continue
        if not challenge.is_digest or not challenge.param("realm") or not challenge.param("nonce"):
            continue
        try:
            _algorithm(challenge.param("algorithm"))
        except DigestError:
            continue
        qops = challenge.qop_options
        if qops and not {"auth", "auth-int"} & set(qops):
            continue
        return challenge
    return None


def authorization(
    challenge: AuthHeader,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The credentials answering ``challenge`` (the value of Authorization / Proxy-Authorization).

    Prefers qop ``auth`` over ``auth-int`` when both are offered; echoes
    ``opaque`` and ``algorithm``.  DigestError if the challenge cannot be met.
    """
    realm = challenge.param("realm")
    nonce = challenge.param("nonce")
    if not challenge.is_digest or realm is None or nonce is None:
        raise DigestError("not a Digest challenge with realm and nonce")
    algorithm = challenge.param("algorithm")
    qops = challenge.qop_options
    qop: str | None = None
    if qops:
        qop = "auth" if "auth" in qops else "auth-int" if "auth-int" in qops else None
        if qop is None:
            raise DigestError(f"unsupported qop {qops!r}")
    nc_text = f"{nc:08x}"
    response = digest_response(
        algorithm=algorithm,
        username=username,
        realm=realm,
        password=password,
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=nc_text if qop else None,
        cnonce=cnonce if qop else None,
        body=body,
    )
    parts = [
        f"username={quote_string(username)}",
        f"realm={quote_string(realm)}",
        f"nonce={quote_string(nonce)}",
        f"uri={quote_string(uri)}",
        f"response={quote_string(response)}",
    ]
    if algorithm is not None:
        parts.append(f"algorithm={algorithm}")
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={quote_string(cnonce)}"]
    opaque = challenge.param("opaque")
    if opaque is not None:
        parts.append(f"opaque={quote_string(opaque)}")
    return "Digest " + ", ".join(parts)


# --- server side ---------------------------------------------------------------------------


class Verdict(StrEnum):
    OK = "ok"
    MISSING = "missing"  # no credentials for our realm: challenge
    STALE = "stale"  # right password, old nonce: challenge with stale=true
    FAILED = "failed"  # wrong user, password, nonce or uri: challenge again


@dataclass(frozen=True, slots=True)
class Verification:
    verdict: Verdict
    username: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK


class DigestServer:
    """Challenges and verifies Digest credentials for one realm and a {user: password} map.

    ``algorithms`` are offered in order of preference, one challenge header
    each (RFC 8760 §2.4): put "SHA-256" first only when every client
    understands it, since older ones take the first challenge whatever it is.
    ``now`` is the owner's clock in seconds (any origin, but one clock).
    """

    def __init__(
        self,
        realm: str,
        credentials: Mapping[str, str],
        secret: bytes,
        *,
        algorithms: tuple[str, ...] = ("MD5",),
        nonce_ttl: float = 300.0,
    ) -> None:
        for name in algorithms:
            if name.upper() not in ALGORITHMS:
                raise ValueError(f"unsupported digest algorithm {name!r}")
        if not algorithms:
            raise ValueError("at least one digest algorithm is needed")
        self.realm = realm
        self.credentials = dict(credentials)
        self.algorithms = tuple(a.upper() for a in algorithms)
        self.nonce_ttl = nonce_ttl
        self._secret = secret

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, self.realm.encode() + b"\0" + stamp, hashlib.sha256).digest()[:16]

    def make_nonce(self, now: float) -> str:
        """base64url(8-byte millisecond timestamp + 16-byte HMAC): needs no server state."""
        stamp = struct.pack(">q", int(now * 1000))
        return base64.urlsafe_b64encode(stamp + self._mac(stamp)).decode().rstrip("=")

    def nonce_age(self, nonce: str, now: float) -> float | None:
        """Seconds since we made ``nonce``, or None if we did not make it."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return None
        if len(raw) != 24 or not hmac.compare_digest(raw[8:], self._mac(raw[:8])):
            return None
        stamp: int = struct.unpack(">q", raw[:8])[0]
        return now - stamp / 1000

    def challenges(self, now: float, *, stale: bool = False) -> list[str]:
        """WWW-Authenticate (or Proxy-Authenticate) values, one per algorithm."""
        nonce = self.make_nonce(now)
        out = []
        for algorithm in self.algorithms:
            value = (
                f"Digest realm={quote_string(self.realm)}, nonce={quote_string(nonce)}, "
                f'algorithm={algorithm}, qop="auth"'
            )
            out.append(value + (", stale=true" if stale else ""))
        return out

    def verify(self, method: str, request_uri: str, values: Iterable[str], now: float) -> Verification:
        """Check the Authorization values of a request against our realm and credentials."""
        ours: AuthHeader | None = None
        for value in values:
            try:
                creds = parse_auth_header(value)
            except SipParseError:
                continue
            if creds.is_digest and creds.param("realm") == self.realm:
                ours = creds
                break
        if ours is None:
            return Verification(Verdict.MISSING)
        return self._check(ours, method, request_uri, now)

    def _check(self, creds: AuthHeader, method: str, request_uri: str, now: float) -> Verification:
        username = creds.param("username")
        nonce = creds.param("nonce")
        uri = creds.param("uri")
        response = creds.param("response")
        if username is None or nonce is None or uri is None or response is None:
            return Verification(Verdict.FAILED, username, "incomplete credentials")
        algorithm = (creds.param("algorithm") or "MD5").upper()
        if algorithm not in self.algorithms:
            return Verification(Verdict.FAILED, username, "algorithm not offered")
        if not _same_uri(uri, request_uri):
            return Verification(Verdict.FAILED, username, "uri does not match the Request-URI")
        qop = creds.param("qop")
        nc = creds.param("nc")
        cnonce = creds.param("cnonce")
        if qop is not None and (qop != "auth" or nc is None or cnonce is None):
            return Verification(Verdict.FAILED, username, "bad qop, nc or cnonce")
        password = self.credentials.get(username)
        age = self.nonce_age(nonce, now)
        if password is None or age is None:
            return Verification(Verdict.FAILED, username, "unknown user or nonce")
        expected = digest_response(
            algorithm=algorithm,
            username=username,
            realm=self.realm,
            password=password,
            method=method,
            uri=uri,
            nonce=nonce,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
        )
        if not hmac.compare_digest(expected, response.lower()):
            return Verification(Verdict.FAILED, username, "wrong response")
        if not 0 <= age <= self.nonce_ttl:
            return Verification(Verdict.STALE, username, "stale nonce")
        return Verification(Verdict.OK, username)


def _same_uri(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return parse_uri(a) == parse_uri(b)
    except SipParseError:
        return False
