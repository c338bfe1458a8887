"""Connecting to Redis: the URL checked before any connection, one client configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse

from winnow.errors import ConfigError

if TYPE_CHECKING:
    import redis


def check_redis_url(url: str, option: str = "--source") -> str:
    """Reject anything that is not a Redis URL before trying to connect."""
    scheme = urlparse(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(option, url, "a Redis URL such as redis://127.0.0.1:6379/0")
    return url


def redis_client(url: str, *, socket_timeout: float) -> redis.Redis:
    """A client with redis-py's own retries off: the worker decides when to retry."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=min(socket_timeout, 5.0),
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
