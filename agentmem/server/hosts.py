"""Open mode's guard against other web sites: DNS rebinding and cross-site requests.

While no key exists, every keyless request is served as admin, and ``agentmem serve`` binds to
loopback only. A web page the user visits can still reach a loopback server two ways:

- **DNS rebinding**: the page's own name (``rebind.attacker.example``) is re-pointed to 127.0.0.1, so
  the browser lets the page read the answers. Its requests still carry ``Host: rebind.attacker.example``:
  in open mode a request whose ``Host`` is not a name the server answers to (the loopback names,
  the bound host and the names the user added) is refused with 400 ``host_not_allowed``.
- **Cross-site requests**: a page elsewhere posts a form or a ``fetch`` to ``http://127.0.0.1:PORT``.
  The browser sends its ``Origin``: in open mode a state-changing request (not GET, HEAD or OPTIONS)
  whose ``Origin`` is not the server's own is refused with 403 ``cross_origin``.

Once a key exists neither check runs: a page cannot send a key it does not have (the inspector's
cookie is bound to the server's own host and ``SameSite=Strict``), and a server reached by its
network name must answer to that name without further configuration.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import Request

from .errors import ApiError

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
"""The names a loopback server always answers to."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(host: str) -> str:
    """``host`` without its port and IPv6 brackets, lower-case: ``[::1]:8000`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:  # name:port (a bare IPv6 address has more colons)
        return host.split(":", 1)[0]
    return host


def allowed_hosts(extra: Iterable[str]) -> frozenset[str]:
    """The loopback names and ``extra`` (names or addresses, with or without a port), as compared."""
    return LOOPBACK_HOSTS | {host_name(h) for h in extra if h.strip()}


def check_open_request(request: Request, allowed: frozenset[str]) -> None:
    """Refuse an open-mode request from another site (see the module docstring); else return."""
    host = request.headers.get("host", "")
    if host_name(host) not in allowed:
        raise ApiError(
            400,
            "host_not_allowed",
            f"this server does not answer to the host {host!r} while it runs without keys; "
            "use 127.0.0.1 or localhost, or start it with --allowed-host",
        )
    origin = request.headers.get("origin")
    if origin is None or request.method in _SAFE_METHODS:
        return
    own = f"{request.url.scheme}://{host}".lower()
    parts = urlsplit(origin.strip().lower())
    if f"{parts.scheme}://{parts.netloc}" != own:
        raise ApiError(
            403,
            "cross_origin",
            f"a request from {origin!r} may not change this server's memory while it runs without keys",
        )
