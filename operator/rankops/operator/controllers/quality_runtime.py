"""The quality watch's long-lived parts in the operator process: the Alertmanager receiver (when
configured), its consumer feeding the QualitySLO controller, and the notifier's worker.

Configuration from the environment (the Helm chart sets these when ``alertReceiver.enabled``):

- ``RANKOPS_ALERTS_PORT``: serve ``POST /v1/alerts`` on this port; unset: no receiver (the
  controller's timers still run);
- ``RANKOPS_ALERTS_HOST`` (``0.0.0.0``);
- ``RANKOPS_ALERTS_TOKEN_FILE``: the bearer token (a mounted Secret); required with a port, a
  receiver without authentication is never started;
- ``RANKOPS_ALERTS_CERT_DIR``: TLS when it holds ``tls.crt`` and ``tls.key``;
- ``RANKOPS_ALERTS_MAX_BODY`` (``262144``): the body bound in bytes (413 above it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from aiohttp import web

from .alerts import DEFAULT_MAX_BODY, AlertReceiver, TokenFile, start_receiver, tls_context
from .qualityslo import QualitySLOController

__all__ = ["QualityRuntime", "ReceiverConfig"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ReceiverConfig:
    port: int | None = None
    host: str = "0.0.0.0"
    token_file: Path | None = None
    cert_dir: Path | None = None
    max_body: int = DEFAULT_MAX_BODY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReceiverConfig:
        env = os.environ if env is None else env
        raw_port = env.get("RANKOPS_ALERTS_PORT", "").strip()
        if not raw_port:
            return cls()
        try:
            port = int(raw_port)
            max_body = int(env.get("RANKOPS_ALERTS_MAX_BODY", str(DEFAULT_MAX_BODY)))
        except ValueError as exc:
            raise ValueError(
                f"RANKOPS_ALERTS_PORT / RANKOPS_ALERTS_MAX_BODY must be integers: {exc}"
            ) from exc
        if not 0 <= port <= 65535 or max_body < 1024:
            raise ValueError(f"RANKOPS_ALERTS_PORT {port} or RANKOPS_ALERTS_MAX_BODY {max_body} out of range")
        token = env.get("RANKOPS_ALERTS_TOKEN_FILE", "").strip()
        if not token:
            raise ValueError("RANKOPS_ALERTS_PORT is set but RANKOPS_ALERTS_TOKEN_FILE is not: "
                             "the receiver never runs without a bearer token")  # fmt: skip
        cert_dir = env.get("RANKOPS_ALERTS_CERT_DIR", "").strip()
        return cls(
            port=port,
            host=env.get("RANKOPS_ALERTS_HOST", "0.0.0.0") or "0.0.0.0",
            token_file=Path(token),
            cert_dir=Path(cert_dir) if cert_dir else None,
            max_body=max_body,
        )


class QualityRuntime:
    def __init__(
        self,
        controller: QualitySLOController,
        config: ReceiverConfig,
        model_exists: Callable[[str, str], Awaitable[bool]],
    ) -> None:
        self.controller = controller
        self.config = config
        self.model_exists = model_exists
        self.receiver: AlertReceiver | None = None
        self._runner: web.AppRunner | None = None
        self._consumer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.config.port is None:
            logger.info(
                "Alertmanager receiver off (RANKOPS_ALERTS_PORT unset); QualitySLOs run on their timers"
            )
            return
        assert self.config.token_file is not None
        token = TokenFile(self.config.token_file)  # an unreadable or empty token stops start-up here
        self.receiver = AlertReceiver(token.read, self.model_exists, max_body_bytes=self.config.max_body)
        ssl = None
        cert_dir = self.config.cert_dir
        if cert_dir is not None and (cert_dir / "tls.crt").exists() and (cert_dir / "tls.key").exists():
            ssl = tls_context(cert_dir / "tls.crt", cert_dir / "tls.key")
        self._runner = await start_receiver(self.receiver, self.config.host, self.config.port, ssl)
        self._consumer = asyncio.get_running_loop().create_task(
            self.controller.consume_alerts(self.receiver), name="rankops-alerts"
        )
        logger.info("Alertmanager receiver on %s://%s:%s/v1/alerts", "https" if ssl else "http",
                    self.config.host, self.config.port)  # fmt: skip

    async def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.controller.notifier.close()
