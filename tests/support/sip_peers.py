"""Real SIP peers for end-to-end tests: SIPp, baresip, kamailio, linphonec; and their test media.

Everything runs on 127.0.0.1 only, in a private temporary directory, with bounded timeouts, and
is killed when its context ends (``with``), whatever happens in the test.  A missing binary makes
the test skip with the package to install (``scripts/test`` installs them on Debian).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["TlsFiles", "make_tls_cert", "require_binary"]

#: Debian package per binary (what to install when a test skips).
PACKAGES = {
    "sipp": "sip-tester",
    "baresip": "baresip-core",
    "kamailio": "kamailio",
    "linphonec": "linphone-cli",
    "openssl": "openssl",
    "flite": "flite",
}


def require_binary(name: str) -> str:
    """The path of ``name``, or skip the test saying which Debian package provides it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} not installed (Debian package {PACKAGES.get(name, name)}; scripts/test installs it)"
        )
    return path


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for 127.0.0.1: ``cert`` and ``key`` apart, ``pem`` both in one."""

    cert: Path
    key: Path
    pem: Path


def make_tls_cert(directory: Path, common_name: str = "127.0.0.1") -> TlsFiles:
    """A throwaway RSA certificate with subjectAltName IP:127.0.0.1 and DNS:localhost (openssl CLI)."""
    openssl = require_binary("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, pem = directory / "tls.crt", directory / "tls.key", directory / "tls.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={common_name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    return TlsFiles(cert, key, pem)
