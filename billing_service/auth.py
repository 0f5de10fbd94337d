"""Who is calling, and may they call this method.

Callers prove who they are with an mTLS client certificate (its common name
is the caller's name) when the server has TLS, or with a bearer token in the
``authorization`` metadata. The policy file maps each caller to the RPCs it
may call and lists the SHA-256 of each caller's tokens, so the file itself
holds no secret and a token is rotated by listing the new hash beside the
old one::

    [callers.webhook-gateway]
    rpcs = ["ApplyStripeEvent"]
    token_sha256 = ["9f86d0...", "<the next token's hash during a rotation>"]

No credentials -> UNAUTHENTICATED; a known caller outside its RPCs ->
PERMISSION_DENIED; both logged with the caller and method, never the token.
A caller allowed ApplyStripeEvent may also call its batch form,
ApplyStripeEvents.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import ipaddress
import logging
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from billing_client.names import RPC_NAMES, SERVICE_NAME
from billing_service import metrics

log = logging.getLogger(__name__)

_BILLING_PREFIX = f"/{SERVICE_NAME}/"
# Load balancers probe health without credentials.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/",)

current_caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")


# An RPC that is another's batch form needs only the other's permission: a policy
# written before the batch form existed keeps working when a caller switches to it.
_BATCH_OF = {"ApplyStripeEvents": "ApplyStripeEvent"}


def _granted(rpc: str) -> str:
    """The RPC whose permission ``rpc`` needs (itself, unless it is a batch form)."""
    return _BATCH_OF.get(rpc, rpc)


class PolicyError(ValueError):
    """The policy file is invalid; the message names the entry."""


@dataclass(frozen=True)
class CallerPolicy:
    """One caller: the RPCs it may call and the hashes of its tokens."""

    name: str
    rpcs: frozenset[str]
    token_hashes: tuple[str, ...]


def token_hash(token: str) -> str:
    """The hex SHA-256 the policy file lists for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


_POLICY_KEYS = ("callers",)
_CALLER_KEYS = ("rpcs", "token_sha256")


def _known_keys(table: dict[str, Any], known: tuple[str, ...], entry: str) -> None:
    # A misspelt key (`rpc =`, `token_sha =`) would silently grant or deny nothing.
    unknown = sorted(set(table) - set(known))
    if unknown:
        where = f"{entry}." if entry else ""
        raise PolicyError(
            f"unknown key {where}{unknown[0]} in the auth policy (expected {', '.join(known)})"
        )


def parse_policy(data: dict[str, Any]) -> dict[str, CallerPolicy]:
    """Validate a parsed policy document."""
    _known_keys(data, _POLICY_KEYS, "")
    callers = data.get("callers")
    if not isinstance(callers, dict) or not callers:
        raise PolicyError("callers must be a table with at least one caller")
    result: dict[str, CallerPolicy] = {}
    owners: dict[str, str] = {}
    for name, raw in callers.items():
        entry = f"callers.{name}"
        if not isinstance(raw, dict):
            raise PolicyError(f"{entry} must be a table")
        _known_keys(raw, _CALLER_KEYS, entry)
        rpcs = raw.get("rpcs", [])
        if not isinstance(rpcs, list) or not all(isinstance(r, str) for r in rpcs):
            raise PolicyError(f"{entry}.rpcs must be a list of RPC names")
        unknown = sorted(set(rpcs) - RPC_NAMES)
        if unknown:
            raise PolicyError(f"{entry}.rpcs names unknown RPCs: {', '.join(unknown)}")
        hashes = raw.get("token_sha256", [])
        if not isinstance(hashes, list) or not all(
            isinstance(h, str) and len(h) == 64 and all(c in "0123456789abcdef" for c in h)
            for h in hashes
        ):
            raise PolicyError(f"{entry}.token_sha256 must be a list of hex SHA-256 digests")
        for digest in hashes:
            other = owners.setdefault(digest, name)
            if other != name:
                # One token would authenticate as whichever caller is checked first.
                raise PolicyError(
                    f"{entry}.token_sha256 lists a hash that callers.{other} lists too: "
                    "each token must belong to one caller"
                )
        result[name] = CallerPolicy(name, frozenset(rpcs), tuple(hashes))
    return result


def load_policy(path: Path) -> dict[str, CallerPolicy]:
    """Read and validate the policy file at ``path``."""
    try:
        return parse_policy(tomllib.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise PolicyError(f"auth policy file {path} does not exist") from None
    except IsADirectoryError:
        raise PolicyError(f"auth policy file {path} is a directory, not a file") from None
    except UnicodeDecodeError:
        raise PolicyError(f"auth policy file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise PolicyError(f"cannot read auth policy file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"auth policy file {path} is not valid TOML: {exc}") from None


def _bearer(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip()
    return ""


def _certificate_name(context: Any) -> str:
    auth = context.auth_context() or {}
    names = auth.get("x509_common_name") or []
    return names[0].decode() if names else ""


class Authorizer:
    """Decides each call from the policy; ``insecure`` lets everything through."""

    def __init__(self, policy: dict[str, CallerPolicy] | None, *, insecure: bool = False) -> None:
        self._policy = policy or {}
        self._insecure = insecure

    def identify(self, context: Any) -> str:
        """The caller's name from its certificate or token ("" when unknown)."""
        name = _certificate_name(context)
        if name:
            return name if name in self._policy else ""
        token = _bearer(context.invocation_metadata())
        if not token:
            return ""
        digest = token_hash(token)
        for caller in self._policy.values():
            if any(hmac.compare_digest(digest, known) for known in caller.token_hashes):
                return caller.name
        return ""

    def refusal(self, method: str, context: Any) -> tuple[grpc.StatusCode, str] | None:
        """Why the call may not go on (code, details), or None; remembers the caller.

        Synchronous, so the per-call wrapper awaits nothing on the way to the handler.
        """
        if self._insecure or method.startswith(_OPEN_PREFIXES):
            return None
        caller = self.identify(context)
        if not caller:
            metrics.AUTH_FAILURES.labels("UNAUTHENTICATED").inc()
            log.warning("unauthenticated call to %s from %s", method, context.peer())
            return grpc.StatusCode.UNAUTHENTICATED, "credentials required"
        current_caller.set(caller)
        if not method.startswith(_BILLING_PREFIX):
            return None  # reflection: any authenticated caller
        rpc = method[len(_BILLING_PREFIX) :]
        allowed = self._policy[caller].rpcs
        if rpc not in allowed and _granted(rpc) not in allowed:
            metrics.AUTH_FAILURES.labels("PERMISSION_DENIED").inc()
            log.warning("caller %s may not call %s", caller, rpc)
            return grpc.StatusCode.PERMISSION_DENIED, f"{caller} may not call {rpc}"
        return None

    async def check(self, method: str, context: Any) -> None:
        """Abort the call unless its caller may call ``method``; remember the caller."""
        refused = self.refusal(method, context)
        if refused is not None:
            await context.abort(*refused)


class AuthConfigError(ValueError):
    """Authentication settings that the service refuses to start with."""


def is_loopback(addr: str) -> bool:
    """True when host:port ``addr`` listens on loopback addresses only, after resolution.

    An address literal must be in 127.0.0.0/8 or be ::1; a name must resolve,
    and only to such addresses (``127.1.2.3.example`` is a name like any other).
    """
    host = addr.rsplit(":", 1)[0].strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in found}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%", 1)[0]).is_loopback for a in addresses
    )


def build_authorizer(grpc_addr: str, policy_file: str, insecure_no_auth: bool) -> Authorizer:
    """The Authorizer the settings ask for; AuthConfigError for unsafe or missing config."""
    if insecure_no_auth:
        if not is_loopback(grpc_addr):
            raise AuthConfigError(
                f"BILLING_INSECURE_NO_AUTH=true refuses to listen on {grpc_addr}: "
                "use a loopback address, or configure BILLING_AUTH_POLICY_FILE"
            )
        log.warning("authentication is OFF (BILLING_INSECURE_NO_AUTH=true): development only")
        return Authorizer(None, insecure=True)
    if not policy_file:
        raise AuthConfigError(
            "no BILLING_AUTH_POLICY_FILE: configure callers and their RPCs "
            "(or BILLING_INSECURE_NO_AUTH=true on a loopback address for development)"
        )
    try:
        return Authorizer(load_policy(Path(policy_file)))
    except PolicyError as exc:
        raise AuthConfigError(str(exc)) from None


def server_credentials(
    cert_file: str, key_file: str, client_ca_file: str
) -> grpc.ServerCredentials | None:
    """TLS credentials (mTLS when a client CA is given); None without a certificate."""
    if not cert_file and not key_file:
        if client_ca_file:
            raise AuthConfigError(
                "BILLING_TLS_CLIENT_CA_FILE needs BILLING_TLS_CERT_FILE and _KEY_FILE"
            )
        return None
    if not (cert_file and key_file):
        raise AuthConfigError("BILLING_TLS_CERT_FILE and BILLING_TLS_KEY_FILE go together")
    try:
        pair = (Path(key_file).read_bytes(), Path(cert_file).read_bytes())
        client_ca = Path(client_ca_file).read_bytes() if client_ca_file else None
    except OSError as exc:
        raise AuthConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
