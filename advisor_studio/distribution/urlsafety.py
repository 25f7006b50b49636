"""Is a partner's webhook URL safe to call from inside our network (server-side request forgery)?

With ``WEBHOOK_ALLOW_PRIVATE`` off (production) a webhook URL must be https and every address its
host resolves to must be public: not private, loopback, link-local, multicast, reserved or
unspecified (IPv4-mapped IPv6 addresses are judged by the IPv4 address inside). The check runs when
the URL is saved and again before every send, and the sender connects to the address that passed
(``resolve_public``), so a DNS answer that changes between check and connect cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from flask_babel import gettext as _

from advisor_studio.errors import ValidationError

URL_MAX = 500


class UnsafeURL(ValidationError):
    code = "unsafe_webhook_url"


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or not ip.is_global)


def parse_webhook_url(url) -> tuple[str, str, int]:
    """(scheme, host, port) of a well-formed http(s) URL without credentials, else UnsafeURL."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL(_("The webhook URL is required."), fields={"webhook_url": _("required")})
    url = url.strip()
    if len(url) > URL_MAX or any(ord(ch) < 33 or ch == "\\" for ch in url):
        raise UnsafeURL(_("The webhook URL is not a valid URL."), fields={"webhook_url": _("invalid URL")})
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL(_("The webhook URL is not a valid URL."), fields={"webhook_url": _("invalid URL")}) from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise UnsafeURL(_("The webhook URL must be an http(s) URL without user name or password."),
                        fields={"webhook_url": _("invalid URL")})
    return scheme, host, port or (443 if scheme == "https" else 80)


def resolve_public(url, *, allow_private: bool) -> list[str]:
    """The addresses ``url``'s host resolves to, all checked; UnsafeURL if any is not allowed.

    With ``allow_private`` (development and tests: receivers on loopback) only the URL's form is
    checked and the host's addresses are returned unfiltered.
    """
    scheme, host, port = parse_webhook_url(url)
    if not allow_private and scheme != "https":
        raise UnsafeURL(_("The webhook URL must use https."), fields={"webhook_url": _("https required")})
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(_("The webhook host %(host)s cannot be resolved.", host=host),
                        fields={"webhook_url": _("host not found")}) from None
    addresses = sorted({info[4][0] for info in infos})
    if not allow_private:
        blocked = [a for a in addresses if not _is_public(a)]
        if blocked or not addresses:
            raise UnsafeURL(_("The webhook host resolves to a private or internal address (%(address)s); "
                              "only public addresses are allowed.", address=", ".join(blocked) or "-"),
                            fields={"webhook_url": _("private address")})
    return addresses


def check_webhook_url(url) -> str:
    """Validate a webhook URL for saving under the app's configuration; return it stripped."""
    from flask import current_app

    resolve_public(url, allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE"])
    return url.strip()
