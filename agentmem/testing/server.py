"""LoopbackServer: an OpenAI-compatible chat-completions and embeddings server on 127.0.0.1, standard
library only."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias

from .embedder import HashingEmbedder
from .scripted import ToolCall

# ---- an OpenAI-compatible server on loopback --------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """An HTTP error reply of :class:`LoopbackServer`.

    ``body``: a str (sent as is), a dict (sent as JSON), or ``None`` for an OpenAI-style error object.
    A 429 or 5xx is what the extraction retries with backoff; a 4xx other than 429 fails at once.
    """

    status: int = 500
    body: str | Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Slow:
    """``reply``, sent ``seconds`` late (on top of the server's ``delay``): a slow or hung model."""

    seconds: float
    reply: ServerReply


ServerReply: TypeAlias = (
    str | Mapping[str, Any] | Fault | Slow | ToolCall | Callable[[dict[str, Any]], "ServerReply"]
)
"""What :class:`LoopbackServer` answers: assistant text, a dict (sent as JSON text), an HTTP error,
a delayed reply, a tool call, or a function of the request body that returns one of these."""

_CHAT_PATH = "/v1/chat/completions"
_EMBEDDINGS_PATH = "/v1/embeddings"


@dataclass(frozen=True)
class _Stream:
    """A streamed reply: ``chat.completion.chunk`` bodies, sent as server-sent events."""

    chunks: list[dict[str, Any]]


def _error(message: str, kind: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


class _Server(ThreadingHTTPServer):
    """Keeps its open connections, so stop() can close the idle keep-alive ones clients pool."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, owner: LoopbackServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is no news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    disable_nagle_algorithm = True  # else a reply's headers and body meet delayed ACKs: +40 ms a call

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_POST(self) -> None:
        self.server.owner._serve(self)

    def do_GET(self) -> None:
        self.send(
            404, _error(f"LoopbackServer serves POST {_CHAT_PATH} and {_EMBEDDINGS_PATH}", "not_found", 404)
        )

    def body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True  # the body's end is unknown: this connection is done
            return None
        return self.rfile.read(int(length))

    def send(self, status: int, payload: str | Mapping[str, Any] | _Stream) -> None:
        if isinstance(payload, _Stream):
            self.send_response(status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events = [f"data: {json.dumps(chunk)}\n\n" for chunk in payload.chunks] + ["data: [DONE]\n\n"]
            for event in events:  # one HTTP chunk per event, flushed: the client reads them as they come
                data = event.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        is_text = isinstance(payload, str)
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8" if is_text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LoopbackServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

    Standard library only; it listens on a free port in a daemon thread and answers
    ``POST /v1/chat/completions`` from a queue of replies. Point a litellm model at
    :attr:`url` (``model="openai/any-name"``, ``model_options={"api_base": server.url,
    "api_key": "anything"}``) and the whole HTTP path runs without a network or a key.

    A reply is a str (the assistant's content), a dict (sent as JSON content), a :class:`Fault`
    (an HTTP error), a :class:`Slow` (a reply sent late), a :class:`ToolCall`, or a function of the
    request body returning one of these. When no reply is left, the server answers 500 with an
    explanation, so a test fails instead of hanging. A request with ``"stream": true`` gets its
    reply as server-sent ``chat.completion.chunk`` events in OpenAI's format: the text a word at a
    time (a tool call in one chunk), then the finish reason, then the usage when
    ``stream_options.include_usage`` asks for it, then ``data: [DONE]``; a :class:`Fault` is still
    a plain HTTP error.

    ``POST /v1/embeddings`` answers in OpenAI's format with ``embedder``'s vectors (default: a
    :class:`HashingEmbedder`), so ``embedding_model="openai/any-name"`` with the same
    ``api_base`` runs litellm's real embedding path; while :attr:`embedding_fault` is set, every
    embeddings request gets that error instead.

    Args:
        replies: the queue of replies, or one function ``(request_body) -> reply`` that answers
            every request.
        delay: seconds slept before each reply (simulated model latency); settable later.
        embedder: a function from texts to vectors, for ``/embeddings``.

    Attributes:
        requests: the JSON bodies received on the chat endpoint, in order of arrival.
        completions: the ``chat.completion`` bodies sent back (with their ``usage``), in order; for a
            streamed reply, the completion its chunks add up to.
        handler_seconds: total seconds spent in request handlers, summed over concurrent requests
            and including ``delay``; a benchmark subtracts it to get the client's own time.
        peak_concurrency: the most requests the server was handling at one moment.
        embedding_requests: the JSON bodies received on the embeddings endpoint, in order.
    """

    def __init__(
        self,
        replies: Iterable[ServerReply] | Callable[[dict[str, Any]], ServerReply] = (),
        *,
        delay: float = 0.0,
        embedder: Callable[[Sequence[str]], Sequence[Sequence[float]]] | None = None,
    ) -> None:
        self._respond = replies if callable(replies) else None
        self._queue: deque[ServerReply] = deque() if callable(replies) else deque(replies)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.completions: list[dict[str, Any]] = []
        self.handler_seconds = 0.0
        self.peak_concurrency = 0
        self.embedder = embedder if embedder is not None else HashingEmbedder()
        self.embedding_fault: Fault | None = None
        self.embedding_requests: list[dict[str, Any]] = []

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        """Listen on a free port (a no-op when already running)."""
        if self._server is None:
            server = _Server(self)
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.name = f"LoopbackServer:{server.server_address[1]}"
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop listening and close open connections (a no-op when not running). A request still being
        answered gets no reply: its client sees a connection error."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to give as ``api_base``: ``http://127.0.0.1:PORT/v1``."""
        if self._server is None:
            raise RuntimeError("LoopbackServer is not running; call start() or use it in a with block")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def add(self, *replies: ServerReply) -> None:
        """Queue more replies."""
        with self._lock:
            self._queue.extend(replies)

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"LoopbackServer({where}, {len(self._queue)} queued, {len(self.requests)} received)"

    # ---- serving -------------------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        started = time.perf_counter()
        with self._lock:
            self._in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self._in_flight)
        try:
            status, payload = self._answer(handler.path, handler.body())
        finally:
            # Counted before the reply is sent: a client that has its answer sees its time included.
            with self._lock:
                self._in_flight -= 1
                self.handler_seconds += time.perf_counter() - started
        handler.send(status, payload)

    def _answer(self, path: str, raw: bytes | None) -> tuple[int, str | Mapping[str, Any] | _Stream]:
        route = path.split("?", 1)[0].rstrip("/")
        if route not in (_CHAT_PATH, _EMBEDDINGS_PATH):
            return 404, _error(
                f"LoopbackServer serves POST {_CHAT_PATH} and {_EMBEDDINGS_PATH}, not {path}",
                "not_found",
                404,
            )
        try:
            body = json.loads(raw) if raw is not None else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return 400, _error("the request body must be a JSON object", "invalid_request_error", 400)
        if route == _EMBEDDINGS_PATH:
            return self._embeddings(body)
        with self._lock:
            self.requests.append(body)
            number = len(self.requests)
        if body.get("stream", False) not in (False, True):
            return 400, _error("stream must be true or false", "invalid_request_error", 400)
        with self._lock:
            reply: ServerReply | None = (
                self._respond if self._respond is not None else self._queue.popleft() if self._queue else None
            )
        if self.delay > 0:
            time.sleep(self.delay)
        try:
            return self._reply(body, number, reply)
        except Exception as exc:  # a broken reply function or an unencodable reply: say so, never hang
            message = f"LoopbackServer could not build reply #{number}: {type(exc).__name__}: {exc}"
            return 500, _error(message, "server_error", 500)

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, str | Mapping[str, Any]]:
        with self._lock:
            self.embedding_requests.append(body)
            fault = self.embedding_fault
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return 400, _error("input must be a string or a list of strings", "invalid_request_error", 400)
        if self.delay > 0:
            time.sleep(self.delay)
        if fault is not None:
            if fault.body is None:
                return fault.status, _error(
                    f"LoopbackServer fault {fault.status}", "server_error", fault.status
                )
            return fault.status, fault.body
        try:
            vectors = [[float(x) for x in vector] for vector in self.embedder(texts)]
        except Exception as exc:  # a broken embedder: say so, never hang
            return 500, _error(
                f"LoopbackServer's embedder failed: {type(exc).__name__}: {exc}", "server_error", 500
            )
        tokens = sum(len(text.split()) for text in texts)
        return 200, {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "model": str(body.get("model", "")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _reply(
        self, body: dict[str, Any], number: int, reply: ServerReply | None
    ) -> tuple[int, str | Mapping[str, Any] | _Stream]:
        while callable(reply) or isinstance(reply, Slow):
            if isinstance(reply, Slow):
                time.sleep(reply.seconds)
                reply = reply.reply
            else:
                reply = reply(body)
        if reply is None:
            message = f"LoopbackServer has no reply queued for request #{number}; queue one with add()"
            return 500, _error(message, "server_error", 500)
        if isinstance(reply, Fault):
            if reply.body is None:
                return reply.status, _error(
                    f"LoopbackServer fault {reply.status}", "server_error", reply.status
                )
            if not isinstance(reply.body, str):
                json.dumps(reply.body)  # fail here, while a 500 can still be sent
            return reply.status, reply.body
        completion = self._completion(body, reply)
        with self._lock:
            self.completions.append(completion)
        if body.get("stream") is True:
            return 200, _Stream(_chunks(completion, body))
        return 200, completion

    def _completion(
        self, body: Mapping[str, Any], reply: str | Mapping[str, Any] | ToolCall
    ) -> dict[str, Any]:
        number = next(self._ids)
        message: dict[str, Any]
        if isinstance(reply, ToolCall):
            arguments = json.dumps(reply.arguments)
            call = {
                "id": f"call_{number}",
                "type": "function",
                "function": {"name": reply.name, "arguments": arguments},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish, said = "tool_calls", arguments
        else:
            said = reply if isinstance(reply, str) else json.dumps(reply)
            message = {"role": "assistant", "content": said}
            finish = "stop"
        prompt_tokens = len(json.dumps(body.get("messages", []))) // 4
        completion_tokens = max(1, len(said) // 4)
        return {
            "id": f"chatcmpl-loopback-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "")),
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _chunks(completion: Mapping[str, Any], body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``completion`` as the ``chat.completion.chunk`` bodies a provider streams."""
    head = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**head, "object": "chat.completion.chunk", "choices": [choice]}

    choice = completion["choices"][0]
    message = choice["message"]
    chunks = [chunk({"role": "assistant", "content": ""})]
    if message.get("tool_calls"):
        calls = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        chunks.append(chunk({"tool_calls": calls}))
    else:
        # A word at a time, spaces kept: the pieces join to the whole text.
        chunks += [chunk({"content": piece}) for piece in re.findall(r"\s*\S+\s*|\s+", message["content"])]
    chunks.append(chunk({}, choice["finish_reason"]))
    options = body.get("stream_options")
    if isinstance(options, Mapping) and options.get("include_usage"):
        chunks.append(
            {**head, "object": "chat.completion.chunk", "choices": [], "usage": completion["usage"]}
        )
    return chunks
