"""Why an address cannot be listened on, in words an operator acts on.

gRPC reports a failed bind as "Failed to bind to address" without the
reason; binding a plain socket to the same address recovers it, so the
service and the gateway can both say ``cannot listen on ADDR: in use``.
"""

from __future__ import annotations

import errno
import socket


def split_host_port(addr: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); ValueError when malformed."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{addr!r} is not host:port")
    return host.strip("[]"), int(port)


def describe_os_error(exc: OSError) -> str:
    """A short reason for a failed bind."""
    if exc.errno == errno.EADDRINUSE:
        return "in use"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no such local address"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    return exc.strerror or type(exc).__name__


def listen_problem(addr: str) -> str:
    """Why ``addr`` cannot be listened on (best effort: "cannot bind" when unknown)."""
    try:
        host, port = split_host_port(addr)
    except ValueError:
        return "not host:port"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return describe_os_error(exc)
    for family, kind, proto, _name, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                return describe_os_error(exc)
    return "cannot bind"
