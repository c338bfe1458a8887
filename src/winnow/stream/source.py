"""The Redis Streams side of the worker: a consumer in a consumer group.

Reads come in three kinds, all returning :class:`~winnow.stream.records.Entry` lists:

- :meth:`RedisSource.read_pending` re-reads this consumer's own unacknowledged entries
  (``XREADGROUP ... <id>``), which is what a restarted worker does first;
- :meth:`RedisSource.claim` takes over entries other consumers left pending for too long
  (``XAUTOCLAIM``), and this consumer's own failed ones, which is how retries happen;
- :meth:`RedisSource.read_new` blocks for entries never delivered to the group (``>``).

Delivery counts come from ``XPENDING``; dead letters are written by a Lua script that adds the
entry to the dead-letter stream only when its ``XACK`` succeeds, so an entry is dead-lettered
once even if two workers or a retry after a lost reply try it twice.

Connection errors are not retried here: the worker reconnects with backoff and re-reads.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from winnow.errors import ConfigError
from winnow.io.redis_conn import check_redis_url, redis_client
from winnow.stream.records import DeadLetter, Entry

if TYPE_CHECKING:
    import redis

log = logging.getLogger("winnow.stream")

# ARGV: group, fields per letter, then per letter: mode ("a" = only if XACK removes it from the
# pending list, "f" = always: it is no longer pending), entry id, field/value pairs.
_DEAD_LETTER_LUA = """
local nf = tonumber(ARGV[2])
local added = 0
local i = 3
while i <= #ARGV do
  local mode, eid = ARGV[i], ARGV[i + 1]
  local ok = mode == 'f'
  if not ok then ok = redis.call('XACK', KEYS[1], ARGV[1], eid) == 1 end
  if ok then
    redis.call('XADD', KEYS[2], '*', unpack(ARGV, i + 2, i + 1 + 2 * nf))
    added = added + 1
  end
  i = i + 2 + 2 * nf
end
return added
"""


def _as_sent(response: Any, **_options: Any) -> Any:
    return response


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


class RedisSource:
    """One consumer of a consumer group on one stream.

    Parameters
    ----------
    url : ``redis://host:port/db``.
    stream, group, consumer : the stream key, the consumer group (created at ``start_id`` when
        missing) and this worker's consumer name (keep it stable across restarts: a restarted
        worker finds its pending entries under that name).
    dead_letter : the dead-letter stream key.
    block_ms : how long :meth:`read_new` waits for new entries.
    """

    def __init__(
        self,
        url: str,
        stream: str,
        group: str,
        consumer: str,
        *,
        dead_letter: str,
        block_ms: int = 1000,
        start_id: str = "0",
    ) -> None:
        self.url = check_redis_url(url)
        self.stream, self.group, self.consumer = stream, group, consumer
        self.dead_letter_stream = dead_letter
        self.block_ms = block_ms
        self.start_id = start_id
        self._client: redis.Redis | None = None
        self._dead_letter_script: Any = None

    # ------------------------------------------------------------------ connection
    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("RedisSource.connect() was not called")
        return self._client

    def connect(self) -> None:
        """(Re)connect, check the server answers and make sure the group exists."""
        self.close()
        # a blocking read must not hit the socket timeout while waiting
        self._client = redis_client(self.url, socket_timeout=self.block_ms / 1000 + 10)
        self._client.ping()
        # stream replies stay as Redis sends them (entries' fields as flat lists): redis-py's
        # parsing into dicts costs more than the column-wise decoding that follows it
        for command in ("XREADGROUP", "XAUTOCLAIM"):
            self._client.set_response_callback(command, _as_sent)
        self._dead_letter_script = self._client.register_script(_DEAD_LETTER_LUA)
        self.ensure_group()

    def ensure_group(self) -> None:
        import redis

        try:
            self.client.xgroup_create(self.stream, self.group, id=self.start_id, mkstream=True)
            log.info("created consumer group %r on stream %r at %s", self.group, self.stream, self.start_id)
        except redis.ResponseError as e:
            if "BUSYGROUP" in str(e):
                return
            if "WRONGTYPE" in str(e):
                raise ConfigError("--stream", self.stream, "a Redis stream key", f"Redis said: {e}") from e
            raise

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    # ------------------------------------------------------------------ reading
    def _entries(self, reply: Any) -> list[tuple[str, list[bytes] | None]]:
        # RESP3 (redis-py 8's default) answers a map {stream: entries}, RESP2 [[stream, entries]]
        per_stream = reply.values() if isinstance(reply, dict) else [r[1] for r in reply or []]
        return [(_s(eid), pairs or None) for entries in per_stream for eid, pairs in entries]

    def read_new(self, count: int, block_ms: float | None = None) -> list[Entry]:
        """Entries never delivered to the group; blocks up to ``block_ms`` (default: the source's)."""
        block = self.block_ms if block_ms is None else max(1, int(block_ms))
        reply = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block
        )
        return [Entry(eid, pairs, 1) for eid, pairs in self._entries(reply)]

    def read_pending(self, after: str, count: int) -> list[Entry]:
        """This consumer's own pending entries with an id above ``after`` ("0" = from the start)."""
        reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: after}, count=count)
        return self._with_deliveries(self._entries(reply))

    def claim(self, cursor: str, count: int, min_idle_ms: int) -> tuple[str, list[Entry], list[str]]:
        """``XAUTOCLAIM`` from ``cursor``: (next cursor, claimed entries, ids deleted meanwhile)."""
        reply = self.client.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_ms, start_id=cursor, count=count
        )
        nxt = _s(reply[0])
        claimed = [(_s(eid), pairs or None) for eid, pairs in reply[1]]
        deleted = [_s(d) for d in reply[2]] if len(reply) > 2 else []
        return nxt, self._with_deliveries(claimed), deleted

    def _with_deliveries(self, entries: list[tuple[str, list[bytes] | None]]) -> list[Entry]:
        if not entries:
            return []
        rows = self.client.xpending_range(
            self.stream,
            self.group,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries) * 4 + 100,
            consumername=self.consumer,
        )
        # redis-py types every value of a pending entry as bytes | str | int; the id is never an int
        counts = {_s(cast("bytes | str", r["message_id"])): int(r["times_delivered"]) for r in rows}
        return [Entry(eid, pairs, counts.get(eid, 1)) for eid, pairs in entries]

    # ------------------------------------------------------------------ committing
    def ack(self, ids: list[str]) -> int:
        if not ids:
            return 0
        return int(self.client.xack(self.stream, self.group, *ids))

    def dead_letter(self, letters: list[DeadLetter]) -> int:
        """Write letters to the dead-letter stream and acknowledge them, atomically per entry."""
        if not letters:
            return 0
        now = datetime.now(UTC)
        nf = len(letters[0].fields(self.consumer, now))
        args: list[str] = [self.group, str(nf)]
        for d in letters:
            args += ["a" if d.pending else "f", d.entry_id]
            for k, v in d.fields(self.consumer, now).items():
                args += [k, v]
        return int(self._dead_letter_script(keys=[self.stream, self.dead_letter_stream], args=args))

    # ------------------------------------------------------------------ observing
    def backlog(self) -> tuple[int | None, int]:
        """(lag: entries not yet delivered to the group, pending: delivered, not acknowledged)."""
        import redis

        try:
            groups = self.client.xinfo_groups(self.stream)
        except redis.ResponseError:  # the stream is gone; the next read re-creates it
            return None, 0
        for g in groups:
            if _s(g["name"]) == self.group:
                lag = g.get("lag")
                return (None if lag is None else int(lag)), int(g["pending"])
        return None, 0
