"""Who may see the dashboard: loopback binds are open, any other bind needs a token or basic auth.

A token is accepted as `Authorization: Bearer TOKEN`, once as `?token=TOKEN` (which sets a session
cookie and redirects to the same page without it, so the token stays out of history and logs), or
from the login form. Basic auth is the browser's own prompt. The session cookie holds an HMAC of
the token, never the token. Forms that change anything carry a CSRF token bound to the user.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass, field

SESSION_COOKIE = "newsdedup_session"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


@dataclass(frozen=True)
class Credentials:
    """The secrets the dashboard accepts (empty: that method is off)."""

    token: str = ""
    user: str = ""
    password: str = ""
    csrf_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    """Signs CSRF tokens; new with every start, so a form from before a restart must be reloaded."""

    @property
    def configured(self) -> bool:
        return bool(self.token or (self.user and self.password))

    @property
    def session_value(self) -> str:
        """What the session cookie holds: proof of the token, useless for anything else."""
        return hmac.new(self.token.encode(), b"newsdedup-web-session", hashlib.sha256).hexdigest()


def host_only(host: str) -> str:
    """The host of a "host", "host:port", "[v6]" or "[v6]:port" string, lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_loopback(host: str) -> bool:
    """True for a loopback address or a name that resolves only to loopback addresses."""
    if loopback_host_header(host):
        return True
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host_only(host), None)}
    except (OSError, UnicodeError):
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)


def loopback_host_header(host_header: str) -> bool:
    """True when a request's Host names a loopback address literally (no DNS: a rebinding attack
    controls what its own name resolves to)."""
    name = host_only(host_header)
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure_error(host: str, credentials: Credentials, overrides: bool) -> str | None:
    """Why the dashboard must not start on this address with these settings (None: it may)."""
    if not is_loopback(host) and not credentials.configured:
        return (f"--host {host} is not a loopback address: anyone who can reach it could read the "
                "dashboard; set a token ([web] token or NEWSDEDUP_WEB_TOKEN) or basic auth "
                "([web] user and password, or NEWSDEDUP_WEB_USER and NEWSDEDUP_WEB_PASSWORD)")
    if overrides and not credentials.configured:
        return ("overrides from the dashboard need authenticated users (the audit log records who): "
                "set [web] token or user and password, or leave [web] overrides off")
    return None


def _basic_user(header: str, credentials: Credentials) -> str | None:
    if not (credentials.user and credentials.password) or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    user_ok = hmac.compare_digest(user.encode(), credentials.user.encode())
    password_ok = hmac.compare_digest(password.encode(), credentials.password.encode())
    return user if user_ok and password_ok else None


def token_matches(candidate: str, credentials: Credentials) -> bool:
    return bool(credentials.token) and hmac.compare_digest(candidate.encode(), credentials.token.encode())


def identify(authorization: str, session_cookie: str, credentials: Credentials) -> str | None:
    """Who this request comes from ("token" or the basic-auth user name), or None when unknown."""
    user = _basic_user(authorization, credentials)
    if user is not None:
        return user
    if authorization.lower().startswith("bearer ") and token_matches(authorization[7:].strip(), credentials):
        return "token"
    if credentials.token and session_cookie and hmac.compare_digest(session_cookie, credentials.session_value):
        return "token"
    return None


def csrf_token(credentials: Credentials, who: str) -> str:
    """The token a form posted by `who` must carry."""
    return hmac.new(credentials.csrf_key, f"csrf:{who}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(credentials: Credentials, who: str, candidate: str) -> bool:
    return hmac.compare_digest(candidate.encode(), csrf_token(credentials, who).encode())
