"""What every response of the server gets, whatever route made it.

- ``BodyLimit``: a request body over the limit is refused before it is read
  (by its Content-Length), or as soon as the bytes read pass the limit (a
  chunked body): 413 with the JSON error shape, never 560 MB of RSS first.
- ``SecurityHeaders``: ``X-Content-Type-Options: nosniff`` on everything; on
  an HTML page that does not set its own policy (the chat, the API docs) a
  restrictive ``Content-Security-Policy``: nothing loads from another host,
  forms post only here, and only this server's own pages may frame it
  (``frame-ancestors 'self'``). The widget's panel sets its own policy, which
  adds the help centre's origins: the only page another site may frame.
- ``BlockedPaths``: routes the chat has no use for (Gradio's file upload)
  answer 404 before Gradio sees them.

Pure ASGI: they wrap the FastAPI app and the mounted Gradio app alike.
"""

from __future__ import annotations

import json

__all__ = ["PAGE_CSP", "BlockedPaths", "BodyLimit", "SecurityHeaders"]

# Gradio's page needs inline scripts and styles and evaluates strings as script (its HTML
# component); what a page may load, connect to, post to or be framed by is this server alone.
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' data: blob:; connect-src 'self'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)


async def _send_json(send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge:
    def __init__(self, limit: int):
        self.limit = limit

    def message(self) -> str:
        return (f"The request body is larger than {self.limit:,} bytes, the limit here. "
                "Send only the question or the delivery-failure part of the message.")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes (``large_limit`` on paths not under
    ``prefixes``: the chat's events carry the conversation shown)."""

    def __init__(self, app, limit: int, large_limit: int, prefixes: tuple[str, ...]):
        self.app, self.limit, self.large_limit, self.prefixes = app, limit, large_limit, prefixes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit if scope["path"].startswith(self.prefixes) else self.large_limit
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _send_json(send, 400, "The Content-Length header is not a number.")
                if declared > limit:
                    return await _send_json(send, 413, BodyTooLarge(limit).message())
        seen = 0
        started = refused = False

        async def counted_receive():
            nonlocal seen, started, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # answer now; the app sees the client gone and gives up
                    refused = True
                    if not started:
                        started = True
                        await _send_json(send, 413, BodyTooLarge(limit).message())
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            nonlocal started
            if refused:
                return  # the 413 has been sent; whatever the app says after it is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, tracked_send)


class SecurityHeaders:
    def __init__(self, app, page_csp: str = PAGE_CSP):
        self.app, self.page_csp = app, page_csp.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {k.lower() for k, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if ctype.startswith(b"text/html") and b"content-security-policy" not in names:
                    headers += [(b"content-security-policy", self.page_csp), (b"x-frame-options", b"SAMEORIGIN"),
                                (b"referrer-policy", b"strict-origin-when-cross-origin")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class BlockedPaths:
    """404 for paths ending in one of ``suffixes`` (any mount point)."""

    def __init__(self, app, suffixes: tuple[str, ...]):
        self.app, self.suffixes = app, suffixes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].rstrip("/").endswith(self.suffixes):
            return await _send_json(send, 404, "Not available: the chat takes no file uploads.")
        await self.app(scope, receive, send)
