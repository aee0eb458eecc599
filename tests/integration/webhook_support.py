"""Test doubles for admission: a CA and serving certificate (openssl), and a recording webhook.

``issue_certificate`` makes a CA and a certificate for the given DNS names and IPs with the
``openssl`` command (no Python crypto library needed). ``RecordingWebhook`` is an HTTPS
AdmissionReview endpoint in the test's event loop that records what it was sent and answers
what the test set (``answer``), optionally late (``delay``).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import ssl
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["Certificate", "RecordingWebhook", "issue_certificate"]


@dataclass(frozen=True)
class Certificate:
    ca: Path
    cert: Path
    key: Path

    @property
    def ca_bundle(self) -> str:
        """``clientConfig.caBundle``: the CA's PEM, base64."""
        return base64.b64encode(self.ca.read_bytes()).decode()


def issue_certificate(directory: Path, names: Sequence[str]) -> Certificate:
    """A fresh CA and a certificate (``tls.crt``/``tls.key``) for ``names`` (DNS names or IPs)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "tls.key", directory / "tls.csr", directory / "tls.crt"

    def is_ip(name: str) -> bool:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    sans = ",".join(f"IP:{n}" if is_ip(n) else f"DNS:{n}" for n in names)
    ext = directory / "san.ext"
    ext.write_text(
        f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
    )

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
            "-days", "2", "-subj", "/CN=sandbox-test-ca")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", f"/CN={names[0]}")  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return Certificate(ca, cert, key)


def allow(request: dict[str, Any]) -> dict[str, Any]:
    return {"allowed": True}


@dataclass
class RecordingWebhook:
    """An AdmissionReview endpoint: ``answer(request) -> response`` (``uid`` added unless set)."""

    certificate: Certificate
    answer: Callable[[dict[str, Any]], dict[str, Any]] = allow
    delay: float = 0.0
    raw: Callable[[dict[str, Any]], Any] | None = None  # answer with this whole body instead
    reviews: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> RecordingWebhook:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate.cert, self.certificate.key)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/validate"

    async def _serve(self, request: web.Request) -> web.Response:
        review = json.loads(await request.text())
        self.reviews.append(review)
        self.paths.append(request.path_qs)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw is not None:
            return web.json_response(self.raw(review))
        response = {"uid": review["request"]["uid"], **self.answer(review["request"])}
        return web.json_response(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        )
