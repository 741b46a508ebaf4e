"""RFC 4475 torture messages: every file, with the assertions the README asks for."""

from __future__ import annotations

import pytest

from palaver.sip import (
    AbsoluteURI,
    Request,
    Response,
    SipParseError,
    SipURI,
    parse_cseq,
    parse_max_forwards,
    parse_message,
    parse_name_addr,
    parse_via,
)
from palaver.sip.parser import StreamFramer

from .conftest import load, names, torture_dir


def req(name: str, folder: str = "valid") -> Request:
    msg = parse_message(load(folder, name))
    assert isinstance(msg, Request)
    return msg


def test_expected_file_counts() -> None:
    root = torture_dir()
    counts = {d: len(list((root / d).glob("*.dat"))) for d in ("valid", "invalid", "application")}
    counts["transaction"] = len(list((root / "transaction").glob("*.dat")))
    counts["compat"] = len(list((root / "compat").glob("*.dat")))
    assert counts == {"valid": 13, "invalid": 19, "application": 15, "transaction": 1, "compat": 1}


@pytest.mark.parametrize("name", names("valid"))
def test_valid_parses_and_round_trips(name: str) -> None:
    msg = parse_message(load("valid", name))
    again = parse_message(msg.to_bytes())
    assert again == msg
    assert again.to_bytes() == msg.to_bytes()


@pytest.mark.parametrize("name", names("valid"))
def test_valid_parses_on_a_stream(name: str) -> None:
    data = load("valid", name)
    if name == "dblreq":  # its trailing bytes are datagram junk, not a second message
        data = data[: data.index(b"\r\n\r\n") + 4]
    framer = StreamFramer()
    out = framer.feed(data)
    assert out == [parse_message(data)]
    assert framer.buffered == 0


def test_wsinv() -> None:
    m = req("wsinv")
    h = m.headers
    assert m.method == "INVITE"
    to = parse_name_addr(h.get("To") or "", "To")
    assert to.tag == "1918181833n"
    assert isinstance(to.uri, SipURI) and to.uri.user == "vivekg"
    frm = parse_name_addr(h.get("From") or "", "From")
    assert frm.display_name == 'J Rosenberg \\"'
    assert frm.tag == "98asjd8"
    assert parse_max_forwards(h.get("max-forwards") or "") == 68
    cseq = parse_cseq(h.get("CSeq") or "")
    assert (cseq.number, cseq.method) == (9, "INVITE")
    assert h.get("Subject") == ""
    vias = [parse_via(v) for v in h.get_all("Via")]
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert h.get("NewFangledHeader") == "newfangled value continued newfangled value"
    # Unknown header: opaque, never split into parameters or list elements.
    assert h.get_all("UnknownHeaderWithUnusualValue") == [";;,,;;,;"]
    contact = parse_name_addr(h.get("m") or "", "Contact")
    assert contact.display_name == 'Quoted string ""'
    assert contact.param("newparam") == "newvalue"
    assert contact.param("secondparam") == ""
    assert contact.param("q") == "0.33"
    assert len(m.body) == 150


def test_intmeth_unknown_method() -> None:
    m = req("intmeth")
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert isinstance(m.uri, SipURI)
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    to = parse_name_addr(m.headers.get("To") or "", "To")
    assert to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    frm = parse_name_addr(m.headers.get("From") or "", "From")
    assert frm.display_name == "token1~` token2'+_ token3*%!.-"
    assert frm.tag == "_token~1'+`*%!-."
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"
    assert parse_via(m.headers.get("Via") or "").branch == "z9hG4bK-.!%66*_+`'~"


def test_esc01_unescapes_once() -> None:
    m = req("esc01")
    assert isinstance(m.uri, SipURI)
    assert m.uri.user == "sips:user@example.com"
    assert m.uri.host == "example.net"
    to = parse_name_addr(m.headers.get("To") or "", "To")
    assert isinstance(to.uri, SipURI) and to.uri.user == "user"
    frm = parse_name_addr(m.headers.get("From") or "", "From")
    assert isinstance(frm.uri, SipURI) and frm.uri.user == "I have spaces"
    contact = parse_name_addr(m.headers.get("Contact") or "", "Contact")
    assert isinstance(contact.uri, SipURI)
    assert contact.uri.user == "caller"
    assert contact.uri.params == (("lr", None), ("name", "value%41"))
    assert str(contact.uri) == "sip:caller@host5.example.net;lr;name=value%2541"


def test_escnull_keeps_nul() -> None:
    m = req("escnull")
    for name in ("To", "From"):
        na = parse_name_addr(m.headers.get(name) or "", name)
        assert isinstance(na.uri, SipURI) and na.uri.user == "null-\x00-null"
    contacts = [parse_name_addr(v, "Contact") for v in m.headers.get_all("Contact")]
    users = [c.uri.user for c in contacts if isinstance(c.uri, SipURI)]
    assert users == ["\x00", "\x00\x00"]


def test_esc02_unknown_method_and_header() -> None:
    m = req("esc02")
    assert m.method == "RE%47IST%45R"
    assert len(m.headers.get_all("Contact")) == 2
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    to = parse_name_addr(m.headers.get("To") or "", "To")
    assert to.display_name == "%Z%45"
    assert parse_via(m.headers.get("Via") or "").branch == "z9hG4bK209%fzsnel234"


def test_lwsdisp() -> None:
    frm = parse_name_addr(req("lwsdisp").headers.get("From") or "", "From")
    assert frm.display_name == "caller"
    assert str(frm.uri) == "sip:caller@example.com"
    assert frm.tag == "323"


def test_longreq_34_vias() -> None:
    m = req("longreq")
    vias = [parse_via(v) for v in m.headers.get_all("Via")]
    assert len(vias) == 34
    assert vias[0].host == "sip33.example.com"
    assert vias[-1].received == "192.0.2.5"
    assert len(vias[-1].branch or "") > 100
    assert len(m.body) == 150
    to = parse_name_addr(m.headers.get("To") or "", "To")
    assert to.display_name is not None and "extreme" in to.display_name


def test_dblreq_ignores_trailing_bytes() -> None:
    data = load("valid", "dblreq")
    m = req("dblreq")
    assert m.method == "REGISTER"
    assert m.body == b""
    assert len(data) - data.index(b"\r\n\r\n") - 4 > 400
    assert b"INVITE" not in m.to_bytes()
    assert m.headers.get("i") == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"


def test_semiuri_user_part() -> None:
    m = req("semiuri")
    assert isinstance(m.uri, SipURI)
    assert m.uri.user == "user;par=u@example.net"
    assert m.uri.host == "example.com"
    assert m.uri.params == ()
    assert str(m.uri) == "sip:user;par=u%40example.net@example.com"
    assert m.headers.get_all("Accept")[-1] == "message/sipfrag"
    assert len(m.headers.get_all("Accept")) == 6


def test_transports() -> None:
    vias = [parse_via(v) for v in req("transports").headers.get_all("Via")]
    assert [v.transport for v in vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_mpart01_binary_body() -> None:
    data = load("valid", "mpart01")
    m = req("mpart01")
    assert len(m.body) == 553
    assert m.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert b"\x00" in m.body
    via = parse_via(m.headers.get("Via") or "")
    assert via.has_rport and via.rport is None


def test_responses() -> None:
    unreason = parse_message(load("valid", "unreason"))
    assert isinstance(unreason, Response)
    assert unreason.status == 200
    assert unreason.reason.startswith("= 2**3 * 5**2 ")
    assert not unreason.reason.isascii()
    noreason = parse_message(load("valid", "noreason"))
    assert isinstance(noreason, Response)
    assert (noreason.status, noreason.reason) == (100, "")


# invalid/: (status, is_response, reason fragment).  Where the README allows a lenient
# element to repair the message, this parser is strict and rejects; those are marked.
INVALID: dict[str, tuple[int, bool, str]] = {
    "badinv01": (400, False, "Via"),
    "clerr": (400, False, "Content-Length"),
    "ncl": (400, False, "Content-Length"),
    "scalar02": (400, False, "CSeq"),
    "scalarlg": (400, True, "CSeq"),
    "quotbal": (400, False, "To"),  # lenient OK: we reject
    "ltgtruri": (400, False, "Request-URI"),  # lenient OK: we reject
    "lwsruri": (400, False, "request line"),  # lenient OK: we reject
    "lwsstart": (400, False, "request line"),  # lenient OK: we reject
    "trws": (400, False, "request line"),  # lenient OK: we reject
    "escruri": (400, False, "Request-URI"),  # lenient OK: we reject
    "baddate": (400, False, "Date"),  # "may be rejected": we reject non-GMT dates
    "regbadct": (400, False, "Contact"),  # lenient OK: we reject
    "badaspec": (400, False, "To"),  # lenient OK: we reject
    "baddn": (400, False, "From"),  # lenient OK: we reject
    "badvers": (505, False, "Version"),
    "mismatch01": (400, False, "CSeq"),
    "mismatch02": (501, False, "CSeq"),  # 501 preferred: unknown method
    "bigcode": (400, True, "status code"),
}


@pytest.mark.parametrize("name", names("invalid"))
def test_invalid_rejected(name: str) -> None:
    status, is_response, fragment = INVALID[name]
    with pytest.raises(SipParseError) as info:
        parse_message(load("invalid", name))
    err = info.value
    assert (err.status, err.is_response) == (status, is_response), err.reason
    assert fragment in err.reason
    if not is_response:
        assert err.can_answer  # Via, From, To, Call-ID and CSeq readable for the answer
        assert err.via and err.call_id and err.cseq


def test_invalid_table_complete() -> None:
    assert sorted(INVALID) == names("invalid")


def test_error_carries_header_values() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(load("invalid", "mismatch01"))
    err = info.value
    assert err.via == ("SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",)
    assert err.from_ == "sip:caller@example.net;tag=34525"
    assert err.to == "sip:j.user@example.com"
    assert err.call_id == "mismatch01.dj0234sxdfl3"
    assert err.cseq == "8 INVITE"


# application/: the parser produces a message except for these, where the README
# says a parser error is also fine.
APPLICATION_ERRORS = {"insuf": "Missing", "multi01": "Multiple", "mcl01": "Content-Length"}


@pytest.mark.parametrize("name", names("application"))
def test_application(name: str) -> None:
    data = load("application", name)
    if name in APPLICATION_ERRORS:
        with pytest.raises(SipParseError) as info:
            parse_message(data)
        assert info.value.status == 400
        assert APPLICATION_ERRORS[name] in info.value.reason
        return
    msg = parse_message(data)
    assert parse_message(msg.to_bytes()) == msg


def test_application_specifics() -> None:
    assert req("unkscm", "application").uri == AbsoluteURI("nobodyKnowsThisScheme", "totallyopaquecontent")
    assert req("novelsc", "application").uri == AbsoluteURI("soap.beep", "//192.0.2.103:3002")
    unksm2 = req("unksm2", "application")
    assert str(parse_name_addr(unksm2.headers.get("To") or "", "To").uri) == "isbn:2983792873"
    c1 = parse_name_addr(req("cparam01", "application").headers.get("Contact") or "", "Contact")
    assert c1.param("unknownparam") == "" and isinstance(c1.uri, SipURI) and c1.uri.params == ()
    c2 = parse_name_addr(req("cparam02", "application").headers.get("Contact") or "", "Contact")
    assert c2.params == () and isinstance(c2.uri, SipURI) and c2.uri.params == (("unknownparam", None),)
    rc = parse_name_addr(req("regescrt", "application").headers.get("Contact") or "", "Contact")
    assert isinstance(rc.uri, SipURI) and rc.uri.headers == (("Route", "<sip:sip.example.com>"),)
    assert parse_max_forwards(req("zeromf", "application").headers.get("Max-Forwards") or "") == 0
    bext = req("bext01", "application")
    assert bext.headers.get_all("Require") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    bcast = parse_message(load("application", "bcast"))
    assert isinstance(bcast, Response)
    assert parse_via(bcast.headers.get_all("Via")[1]).host == "255.255.255.255"


def test_transaction_badbranch() -> None:
    m = req("badbranch", "transaction")
    assert parse_via(m.headers.get("Via") or "").branch == "z9hG4bK"


def test_compat_inv2543_body_runs_to_end() -> None:
    data = load("compat", "inv2543")
    m = req("inv2543", "compat")
    assert "Content-Length" not in m.headers
    assert m.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert parse_via(m.headers.get("Via") or "").branch is None
    # Serialising adds the Content-Length; after that the round trip is exact.
    again = parse_message(m.to_bytes())
    assert again.body == m.body
    assert again.headers.get("Content-Length") == str(len(m.body))
    assert parse_message(again.to_bytes()) == again
