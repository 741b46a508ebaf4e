"""Digest authentication (RFC 2617, RFC 7616, RFC 8760): known vectors, both sides, nonces."""

from __future__ import annotations

import pytest

from palaver.sip import (
    DigestError,
    DigestServer,
    Verdict,
    authorization,
    choose_challenge,
    digest_response,
    parse_auth_header,
)

RFC7616 = {
    "username": "Mufasa",
    "realm": "http-auth@example.org",
    "password": "Circle of Life",
    "method": "GET",
    "uri": "/dir/index.html",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "qop": "auth",
    "nc": "00000001",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
}


def test_rfc2617_section_3_5_example() -> None:
    assert (
        digest_response(
            algorithm=None,
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


def test_rfc7616_section_3_9_1_md5_and_sha256() -> None:
    assert digest_response(algorithm="MD5", **RFC7616) == "8ca523f5e9506fed4657c9700eebdbec"
    assert (
        digest_response(algorithm="SHA-256", **RFC7616)
        == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )


def test_client_authorization_reproduces_the_rfc7616_sha256_example() -> None:
    challenge = parse_auth_header(
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
        "WWW-Authenticate",
    )
    value = authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    creds = parse_auth_header(value)
    assert creds.param("response") == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert creds.param("qop") == "auth" and creds.param("nc") == "00000001"
    assert creds.param("algorithm") == "SHA-256"
    assert creds.param("opaque") == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    assert creds.param("uri") == "/dir/index.html"


def test_client_without_qop_uses_rfc2069_form() -> None:
    challenge = parse_auth_header('Digest realm="r", nonce="n"', "WWW-Authenticate")
    value = authorization(challenge, method="BYE", uri="sip:a@b", username="u", password="p", cnonce="c")
    creds = parse_auth_header(value)
    assert creds.param("qop") is None and creds.param("cnonce") is None
    expected = digest_response(
        algorithm=None, username="u", realm="r", password="p", method="BYE", uri="sip:a@b", nonce="n"
    )
    assert creds.param("response") == expected


def test_sess_and_auth_int_variants() -> None:
    sess = digest_response(algorithm="MD5-sess", **RFC7616)
    assert sess != digest_response(algorithm="MD5", **RFC7616) and len(sess) == 32
    args = {**RFC7616, "qop": "auth-int"}
    assert digest_response(algorithm="MD5", body=b"x", **args) != digest_response(
        algorithm="MD5", body=b"y", **args
    )
    assert len(digest_response(algorithm="SHA-512-256", **RFC7616)) == 64


def test_choose_challenge_takes_the_first_supported() -> None:
    values = [
        'Digest realm="r", nonce="1", algorithm=SHA3-999, qop="auth"',
        "Basic realm=r",
        'Digest realm="r", nonce="2", qop="auth-conf"',
        'Digest realm="r", nonce="3", algorithm=SHA-256, qop="auth"',
        'Digest realm="r", nonce="4", algorithm=MD5, qop="auth"',
    ]
    chosen = choose_challenge(values)
    assert chosen is not None and chosen.param("nonce") == "3"
    assert choose_challenge(["garbage ,,,"]) is None


def test_unsupported_challenge_raises() -> None:
    with pytest.raises(DigestError):
        authorization(
            parse_auth_header('Digest realm="r", nonce="n", algorithm=FOO', "WWW-Authenticate"),
            method="BYE",
            uri="sip:x@y",
            username="u",
            password="p",
            cnonce="c",
        )


def server(**kw: object) -> DigestServer:
    return DigestServer("palaver", {"alice": "s3cret"}, b"k" * 32, **kw)  # type: ignore[arg-type]


def answer(
    srv: DigestServer, now: float, *, password: str = "s3cret", uri: str = "sip:agent@192.0.2.1"
) -> str:
    challenge = choose_challenge(srv.challenges(now))
    assert challenge is not None
    return authorization(
        challenge, method="INVITE", uri=uri, username="alice", password=password, cnonce="abc"
    )


def test_server_round_trip() -> None:
    srv = server()
    (challenge,) = srv.challenges(10.0)
    parsed = parse_auth_header(challenge, "WWW-Authenticate")
    assert parsed.param("realm") == "palaver" and parsed.param("algorithm") == "MD5"
    assert parsed.qop_options == ("auth",)
    result = srv.verify("INVITE", "sip:agent@192.0.2.1", [answer(srv, 10.0)], 11.0)
    assert result.ok and result.username == "alice"


def test_server_rejects_wrong_password_method_uri_and_foreign_nonce() -> None:
    srv = server()
    assert (
        srv.verify("INVITE", "sip:agent@192.0.2.1", [answer(srv, 0, password="x")], 1).verdict
        is Verdict.FAILED
    )
    assert srv.verify("BYE", "sip:agent@192.0.2.1", [answer(srv, 0)], 1).verdict is Verdict.FAILED
    assert srv.verify("INVITE", "sip:other@192.0.2.1", [answer(srv, 0)], 1).verdict is Verdict.FAILED
    other = DigestServer("palaver", {"alice": "s3cret"}, b"z" * 32)
    assert srv.verify("INVITE", "sip:agent@192.0.2.1", [answer(other, 0)], 1).verdict is Verdict.FAILED
    assert srv.verify("INVITE", "sip:agent@192.0.2.1", [], 1).verdict is Verdict.MISSING
    foreign_realm = answer(srv, 0).replace('realm="palaver"', 'realm="elsewhere"')
    assert srv.verify("INVITE", "sip:agent@192.0.2.1", [foreign_realm], 1).verdict is Verdict.MISSING
    assert srv.verify("INVITE", "sip:agent@192.0.2.1", ["Digest ,,,"], 1).verdict is Verdict.MISSING


def test_server_uri_compared_as_uris() -> None:
    srv = server()
    creds = answer(srv, 0, uri="sip:agent@192.0.2.1;transport=UDP")
    assert srv.verify("INVITE", "sip:agent@192.0.2.1;transport=UDP", [creds], 1).ok


def test_stale_nonce_and_tampering() -> None:
    srv = server(nonce_ttl=30.0)
    creds = answer(srv, 100.0)
    assert srv.verify("INVITE", "sip:agent@192.0.2.1", [creds], 130.0).ok
    assert srv.verify("INVITE", "sip:agent@192.0.2.1", [creds], 130.5).verdict is Verdict.STALE
    nonce = parse_auth_header(creds).param("nonce")
    assert nonce is not None
    assert srv.nonce_age(nonce, 101.0) == pytest.approx(1.0)
    assert srv.nonce_age(nonce[:-2] + ("AA" if not nonce.endswith("AA") else "BB"), 101.0) is None
    assert srv.nonce_age("!!!", 0) is None
    (stale,) = srv.challenges(200.0, stale=True)
    assert parse_auth_header(stale, "WWW-Authenticate").param("stale") == "true"


def test_server_offers_algorithms_in_order_and_checks_them() -> None:
    srv = server(algorithms=("SHA-256", "MD5"))
    values = srv.challenges(0)
    assert [parse_auth_header(v, "WWW-Authenticate").param("algorithm") for v in values] == ["SHA-256", "MD5"]
    assert srv.verify("INVITE", "sip:agent@192.0.2.1", [answer(srv, 0)], 1).ok
    md5_only = server()
    sha = answer(srv, 0)  # SHA-256 credentials against a server that only offers MD5
    assert md5_only.verify("INVITE", "sip:agent@192.0.2.1", [sha], 1).verdict is Verdict.FAILED
    with pytest.raises(ValueError):
        server(algorithms=("ROT13",))


def test_server_accepts_rfc2069_credentials_and_rejects_bad_qop() -> None:
    srv = server()
    nonce = srv.make_nonce(0)
    response = digest_response(
        algorithm=None,
        username="alice",
        realm="palaver",
        password="s3cret",
        method="INVITE",
        uri="sip:agent@192.0.2.1",
        nonce=nonce,
    )
    plain = (
        f'Digest username="alice", realm="palaver", nonce="{nonce}", '
        f'uri="sip:agent@192.0.2.1", response="{response}"'
    )
    assert srv.verify("INVITE", "sip:agent@192.0.2.1", [plain], 1).ok
    bad = plain + ", qop=auth-int, nc=00000001, cnonce=x"
    assert srv.verify("INVITE", "sip:agent@192.0.2.1", [bad], 1).verdict is Verdict.FAILED
