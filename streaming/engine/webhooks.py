"""Alerts delivered to the ``ALERT_WEBHOOKS`` (docs/alerts.md), never holding up the loop.

The loop only calls ``submit``: it puts each alert on every webhook's bounded queue without
waiting, and a full queue drops the alert and counts it (``webhook_dropped`` in the
heartbeat). One asyncio task per webhook drains its queue: it waits for a token of the
webhook's own bucket (``ALERT_WEBHOOK_PER_MINUTE``, bursts of ``ALERT_WEBHOOK_BURST``),
posts, and retries a 5xx, a 429 or a connection error with exponential backoff
(``ALERT_WEBHOOK_BACKOFF_SECONDS`` × 2ⁿ, or the server's ``Retry-After``), at most
``ALERT_WEBHOOK_RETRIES`` times. Another 4xx is not retried. A webhook URL carries its
secret, so logs name the webhook by format and host only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from core.settings import Settings
from core.webhooks import WebhookTarget
from streaming.engine.ratelimit import TokenBucket
from streaming.engine.webhook_format import webhook_body

log = logging.getLogger(__name__)

MAX_DELAY_S = 60.0  # no wait between two attempts is longer, whatever Retry-After says
# at shutdown, queued alerts get this long to go out (inside the supervisor's stop timeout)
CLOSE_GRACE_S = 2.0


@dataclass
class WebhookCounters:
    sent: int = 0
    failed: int = 0  # given up (a refused request, or the retries ran out)
    retries: int = 0
    dropped: int = 0  # the queue was full


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class _Webhook:
    """One target's queue, bucket and delivery task."""

    def __init__(self, target: WebhookTarget, dispatcher: WebhookDispatcher) -> None:
        self.target = target
        self.d = dispatcher
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(dispatcher.queue_size)
        self.bucket = TokenBucket(dispatcher.per_minute, float(dispatcher.burst))
        self.task: asyncio.Task[None] | None = None

    async def run(self, client: httpx.AsyncClient) -> None:
        while True:
            alert = await self.queue.get()
            try:
                while (wait := self.bucket.seconds_until()) > 0:
                    await asyncio.sleep(wait)
                self.bucket.try_take()
                await self.deliver(client, alert)
            finally:
                self.queue.task_done()

    async def deliver(self, client: httpx.AsyncClient, alert: dict[str, Any]) -> None:
        body = webhook_body(self.target.format, alert)
        c = self.d.stats
        for attempt in range(self.d.retries + 1):
            delay: float | None = None
            try:
                response = await client.post(self.target.url, json=body)
            except httpx.HTTPError as exc:  # connection refused, reset, timeout
                why = exc.__class__.__name__
            else:
                if response.is_success:
                    c.sent += 1
                    return
                why = f"HTTP {response.status_code}"
                if not _retryable(response.status_code):
                    c.failed += 1
                    log.warning("%s refused an alert (%s); not retried", self.target, why)
                    return
                delay = retry_after(response.headers.get("retry-after"))
            if attempt == self.d.retries:
                break
            if delay is None:
                delay = self.d.backoff_s * 2**attempt
            c.retries += 1
            log.info("%s: %s, retry %d in %.2f s", self.target, why, attempt + 1, delay)
            await asyncio.sleep(min(delay, MAX_DELAY_S))
        c.failed += 1
        log.warning("%s: alert given up after %d attempts (%s)", self.target, attempt + 1, why)


class WebhookDispatcher:
    def __init__(
        self,
        targets: Iterable[WebhookTarget],
        *,
        queue_size: int = 1000,
        per_minute: float = 30.0,
        burst: int = 5,
        retries: int = 4,
        backoff_s: float = 1.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.targets = list(targets)
        self.queue_size, self.per_minute, self.burst = queue_size, per_minute, burst
        self.retries, self.backoff_s, self.timeout_s = retries, backoff_s, timeout_s
        self.stats = WebhookCounters()
        self._hooks: list[_Webhook] = []
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, s: Settings) -> WebhookDispatcher:
        return cls(
            s.alert_webhooks,
            queue_size=s.alert_webhook_queue,
            per_minute=s.alert_webhook_per_minute,
            burst=s.alert_webhook_burst,
            retries=s.alert_webhook_retries,
            backoff_s=s.alert_webhook_backoff_seconds,
            timeout_s=s.alert_webhook_timeout_seconds,
        )

    def _start(self) -> None:
        """The client and one task per webhook, on the running loop (first ``submit``)."""
        self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        self._hooks = [_Webhook(t, self) for t in self.targets]
        for hook in self._hooks:
            hook.task = asyncio.get_running_loop().create_task(hook.run(self._client))
        log.info("alert webhooks: %s", ", ".join(str(t) for t in self.targets))

    def submit(self, alerts: list[dict[str, Any]]) -> None:
        """Queue ``alerts`` for every webhook; never waits (a full queue drops, counted)."""
        if not alerts or not self.targets:
            return
        if self._client is None:
            self._start()
        for hook in self._hooks:
            for alert in alerts:
                try:
                    hook.queue.put_nowait(alert)
                except asyncio.QueueFull:
                    self.stats.dropped += 1

    async def drain(self, timeout: float) -> bool:
        """Wait until every queued alert was delivered or given up (tests, shutdown)."""
        waits = [h.queue.join() for h in self._hooks]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Stop the tasks after at most ``grace_s`` to finish; what is left is dropped."""
        if self._hooks and grace_s > 0:
            await self.drain(grace_s)
        for hook in self._hooks:
            self.stats.dropped += hook.queue.qsize()  # never delivered
            if hook.task is not None:
                hook.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                    await hook.task
        self._hooks = []
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing on a loop that is gone
                await self._client.aclose()
            self._client = None

    def counters(self) -> dict[str, int]:
        """For the engine heartbeat (``Engine.status``)."""
        s = self.stats
        return {
            "webhooks": len(self.targets),
            "webhook_sent": s.sent,
            "webhook_failed": s.failed,
            "webhook_retries": s.retries,
            "webhook_dropped": s.dropped,
            "webhook_queued": sum(h.queue.qsize() for h in self._hooks),
        }
