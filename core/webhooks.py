"""Where alerts are delivered: the ``ALERT_WEBHOOKS`` setting parsed into targets.

``ALERT_WEBHOOKS`` is a comma list of ``format=url`` (docs/alerts.md): ``json`` (the alert
as it is), ``slack`` (``{"text": …}``) or ``discord`` (``{"content": …}``), each to an
http(s) URL. A webhook URL is a secret (whoever holds it can post), so a target shows
only its host in a repr, a log line or an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

FORMATS = ("json", "slack", "discord")


@dataclass(frozen=True)
class WebhookTarget:
    format: str
    url: str = field(repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "?"

    def __str__(self) -> str:
        return f"{self.format} webhook on {self.host}"


def parse_webhook(item: str) -> WebhookTarget:
    """One ``format=url``; ValueError with a message that names no more than the host."""
    fmt, sep, url = item.strip().partition("=")
    fmt, url = fmt.strip().lower(), url.strip()
    if not sep or not url:
        raise ValueError(
            f"ALERT_WEBHOOKS entry must be format=url (format one of {', '.join(FORMATS)})"
        )
    if fmt not in FORMATS:
        raise ValueError(
            f"ALERT_WEBHOOKS format {fmt!r} is unknown: use one of {', '.join(FORMATS)}"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # the URL may carry a token: say what is wrong without repeating it
        what = "no host" if parts.scheme in ("http", "https") else f"scheme {parts.scheme!r}"
        raise ValueError(f"ALERT_WEBHOOKS {fmt} URL must be an http(s) URL with a host, got {what}")
    return WebhookTarget(fmt, url)


def parse_webhooks(value: object) -> list[WebhookTarget]:
    """The comma list (or a list of entries, or targets already parsed)."""
    if isinstance(value, str):
        value = [item for item in value.split(",") if item.strip()]
    if not isinstance(value, list):
        raise ValueError("ALERT_WEBHOOKS must be a comma list of format=url")
    return [v if isinstance(v, WebhookTarget) else parse_webhook(str(v)) for v in value]
