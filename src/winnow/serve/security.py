"""API keys, admin keys, who may reload what, and the request body limit.

Scoring keys come from ``WINNOW_API_KEY`` (one key, or several separated by commas) and/or a key
file (one key per line, blank lines and ``#`` comments ignored), so a new key can be added before
the old one is withdrawn. When at least one key is configured every ``/v1/`` route wants the
``X-API-Key`` header; health, readiness and metrics stay open for probes and scrapers.

Admin keys are separate: they come only from the admin key file, go in the ``X-Admin-Key``
header, and must not also be scoring keys. Without them the admin routes do not exist (404), so
a service started without thinking about it cannot be told to load another model. A reload may
name another folder only under the reload root, and the check is made on the path's text before
the filesystem is touched, so a refused caller learns nothing about what exists.

:func:`check_exposure` refuses to serve beyond loopback without scoring keys unless the operator
says ``--insecure-no-auth``.

A presented key is compared with every configured key by :func:`hmac.compare_digest` (time
independent of where the strings differ) and all keys are always compared, so timing reveals
neither a key nor which one matched. Keys never appear in logs, errors or ``repr``.
"""

from __future__ import annotations

import hmac
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from starlette.requests import ClientDisconnect, Request

from winnow.errors import ConfigError
from winnow.serve.parsing import ClientError
from winnow.serve.settings import ENV_API_KEY

log = logging.getLogger("winnow.serve")

HEADER = "X-API-Key"
ADMIN_HEADER = "X-Admin-Key"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ApiKeys:
    """The accepted API keys (none: the service is open)."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._keys = [k.encode() for k in keys if k]

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._keys)} key(s))"

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of the keys; constant time in the key contents."""
        if not self._keys:
            return True
        candidate = (presented or "").encode()
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(candidate, key)
        return ok and presented is not None

    def shares_a_key_with(self, other: ApiKeys) -> bool:
        return bool(set(self._keys) & set(other._keys))

    def require(self, presented: str | None, header: str = HEADER) -> None:
        """Raise a 401 :class:`~winnow.serve.parsing.ClientError` unless ``presented`` is a key."""
        if not self.check(presented):
            what = "missing" if not presented else "not valid"
            raise ClientError(
                401,
                "unauthorized",
                f"the {'admin' if header == ADMIN_HEADER else 'API'} key is {what}",
                f"Send a valid key in the {header} header.",
                headers={"WWW-Authenticate": header},
            )

    @classmethod
    def from_sources(cls, key_file: Path | None = None, environ: dict[str, str] | None = None) -> ApiKeys:
        """Keys from ``WINNOW_API_KEY`` and ``key_file``; a named file must exist and hold a key."""
        env = os.environ if environ is None else environ
        keys = [k.strip() for k in env.get(ENV_API_KEY, "").split(",") if k.strip()]
        if key_file is not None:
            keys += read_key_file(Path(key_file))
        return cls(keys)

    @classmethod
    def admin(cls, admin_key_file: Path | None, scoring: ApiKeys) -> ApiKeys:
        """Admin keys from ``admin_key_file`` (none: no admin routes); none may be a scoring key."""
        if admin_key_file is None:
            return cls()
        keys = cls(read_key_file(Path(admin_key_file), "--admin-key-file"))
        if keys.shares_a_key_with(scoring):
            raise ConfigError(
                "--admin-key-file",
                str(admin_key_file),
                "admin keys that are not also scoring keys",
                "Give admins their own keys: a scoring client must not be able to swap the model.",
            )
        return keys


def read_key_file(path: Path, option: str = "--api-key-file") -> list[str]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(option, str(path), "a readable UTF-8 file with one key per line") from e
    keys = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not keys:
        raise ConfigError(option, str(path), "a file with at least one key (one per line)")
    short = [i for i, k in enumerate(keys) if len(k) < 16]
    if short:
        log.warning("%d API key(s) in %s are shorter than 16 characters", len(short), path)
    try:
        if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
            log.warning("API key file %s is readable by other users (chmod 600 it)", path)
    except OSError:
        pass  # the keys were read; permissions are advice only
    return keys


def check_exposure(host: str, keys: ApiKeys, insecure_no_auth: bool) -> None:
    """Refuse to listen beyond loopback with no scoring key unless ``--insecure-no-auth``."""
    if keys.enabled or host in LOOPBACK:
        return
    if not insecure_no_auth:
        raise ConfigError(
            "--host",
            host,
            "a loopback address (127.0.0.1, ::1), or API keys for any other address",
            f"Set {ENV_API_KEY} or --api-key-file, or pass --insecure-no-auth to serve "
            "anyone who can reach the port.",
        )
    log.warning("serving on %s with no API key (--insecure-no-auth): anyone who reaches it may score", host)


def reload_target(raw: str, served: Path, root: Path | None) -> Path:
    """The folder a reload may load, or a 403 :class:`ClientError`.

    Without ``root`` only ``served`` itself; with it, any path that resolves under ``root``
    (relative paths are taken from ``root``). The answer is the same whether or not the path
    exists, so a refusal says nothing about the filesystem."""
    if root is None:
        target = Path(raw).expanduser().resolve()
        if target == Path(served).resolve():
            return target
        raise ClientError(
            403,
            "forbidden",
            "this service reloads only the artifact folder it was started with",
            "Replace that folder's contents and reload without a path, or start the service "
            "with --reload-root to allow folders under it.",
        )
    base = Path(root).resolve()
    target = (base / Path(raw).expanduser()).resolve()
    if target.is_relative_to(base):
        return target
    raise ClientError(
        403,
        "forbidden",
        "the path is not under this service's reload root",
        "Name a folder under the root the service was started with (--reload-root).",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    hint = f"Send at most {limit:,} bytes per request: split the records over several requests."
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ClientError(
                400, "bad_content_length", "the Content-Length header is not a number"
            ) from None
        if size > limit:
            raise ClientError(413, "body_too_large", f"the body has {size:,} bytes", hint)
    chunks, total = [], 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:  # chunked bodies declare no length: count as they come
                raise ClientError(413, "body_too_large", f"the body is over {limit:,} bytes", hint)
            chunks.append(chunk)
    except ClientDisconnect:
        # nobody will read the answer; 499 (nginx's "client closed request") keeps it out of 5xx
        raise ClientError(499, "client_closed_request", "the client closed the connection") from None
    return b"".join(chunks)
