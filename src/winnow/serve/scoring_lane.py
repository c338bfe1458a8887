"""The two scoring routes without the web framework's per-request machinery.

FastAPI solves every route's dependencies on each request (it parses query strings and cookies
whether a route wants them or not), matches the path against every route and wraps the call in
several layers: at 2,000 single-record requests a second that was a third of the event
loop's work. :class:`ScoringLane` sends ``POST /v1/score`` and ``POST /v1/screen`` straight to
the route functions of :mod:`winnow.serve.routes` (the very functions FastAPI would call, so the
answers are the same), checks the API key itself and answers a
:class:`~winnow.serve.parsing.ClientError` the way the application's error handler does, and
any other exception with a logged 500, as Starlette's error middleware would: the lane sits
outside FastAPI's own middleware (error handling, telemetry, body limit), which its requests
skip. Every other request, and any other method on those paths, goes on to FastAPI unchanged.
The routes stay in the application, so the OpenAPI document describes them as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi.responses import PlainTextResponse, Response
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from winnow.serve.parsing import ClientError
from winnow.serve.responses import client_error_response
from winnow.serve.security import HEADER, ApiKeys

log = logging.getLogger("winnow.serve")

Handler = Callable[[Request], Awaitable[Response]]


class ScoringLane:
    """Pure ASGI middleware: the scoring routes' POSTs go to their handlers directly.

    ``routes`` maps a path to its route object (recorded in the scope as ``route``, as the
    router would, so metrics label the request by its route) and its handler.
    """

    def __init__(self, app: ASGIApp, routes: dict[str, tuple[object, Handler]], keys: ApiKeys) -> None:
        self.app, self.routes, self.keys = app, routes, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        post = scope["type"] == "http" and scope["method"] == "POST"
        entry = self.routes.get(scope["path"]) if post else None
        if entry is None:
            await self.app(scope, receive, send)
            return
        scope["route"], handler = entry
        request = Request(scope, receive)
        try:
            if self.keys.enabled:
                self.keys.require(request.headers.get(HEADER))
            response = await handler(request)
        except ClientError as exc:
            response = client_error_response(exc)
        except Exception:  # a bug, not the request: logged and answered 500, as Starlette would
            log.exception("scoring request failed")
            response = PlainTextResponse("Internal Server Error", status_code=500)
        await response(scope, receive, send)
