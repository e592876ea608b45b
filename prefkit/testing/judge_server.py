"""A small fake OpenAI-compatible judge server (127.0.0.1 only) that can inject faults, for offline tests.

It answers POST /v1/chat/completions with whatever `responder(messages)` returns, in the OpenAI
response shape (usage, finish_reason, and per-token `logprobs`/`top_logprobs` when asked). A responder
returns the answer text, or a `JudgeReply` to set the answer's token probabilities and finish reason
itself (a judge read by its logprobs, such as AlpacaEval's weighted annotator). `logprobs=False` mimics
a server that ignores logprob requests. Faults are
planned per distinct request body: the k-th time the same body arrives it gets `faults[k]` (if any),
so a client that retries eventually gets the real answer, and a run with faults must end equal to a
run without. Fault names: "401" (refused), "429", "500", "503", "slow" (answer after `slow_s`, to trip a client
timeout), "drop" (close the connection without answering), "garbage" (200 with unparseable text),
"badjson" (200 with a body that is not JSON).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("401", "429", "500", "503", "slow", "drop", "garbage", "badjson")


@dataclass(frozen=True)
class JudgeReply:
    """A one-token answer with given probabilities: `top_logprobs` maps each candidate token to its log-prob."""

    text: str
    top_logprobs: dict[str, float]
    finish_reason: str = "stop"


Responder = Callable[[list[dict[str, Any]]], "str | JudgeReply"]


class FakeJudgeServer:
    """Context manager: `with FakeJudgeServer(responder, faults=[...]) as server: server.base_url`."""

    def __init__(
        self,
        responder: Responder,
        faults: Sequence[str | None] = (),
        slow_s: float = 1.0,
        logprobs: bool = True,
    ) -> None:
        unknown = [fault for fault in faults if fault is not None and fault not in FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown}; choose from {FAULTS}")
        self.responder = responder
        self.faults = list(faults)
        self.slow_s = slow_s
        self.logprobs = logprobs
        self.requests = 0  # every POST received, faulty or not
        self.answered = 0  # real answers to requests that got no fault
        self.faults_served: Counter = Counter()
        self._seen: Counter = Counter()
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeJudgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def plan(self, body: bytes) -> str | None:
        """Count this request and return the fault it gets (None = answer normally)."""
        key = hashlib.sha256(body).hexdigest()
        with self._lock:
            self.requests += 1
            attempt = self._seen[key]
            self._seen[key] += 1
            fault = self.faults[attempt] if attempt < len(self.faults) else None
            if fault is not None:
                self.faults_served[fault] += 1
            return fault

    def completion(self, request: dict[str, Any], reply: str | JudgeReply) -> dict[str, Any]:
        """An OpenAI chat.completion object for `reply` (logprobs per whitespace token when asked)."""
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
        text = reply.text if isinstance(reply, JudgeReply) else reply
        tokens = text.split(" ")
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": reply.finish_reason if isinstance(reply, JudgeReply) else "stop",
            "logprobs": None,
        }
        if request.get("logprobs") and self.logprobs:
            top = int(request.get("top_logprobs") or 0)
            content = (
                [_given_token_logprobs(reply)]
                if isinstance(reply, JudgeReply)
                else [_made_up_token_logprobs(token, top) for token in tokens]
            )
            choice["logprobs"] = {"content": content}
        return {
            "id": f"chatcmpl-fake-{self.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake-judge"),
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_words,
                "completion_tokens": len(tokens),
                "total_tokens": prompt_words + len(tokens),
            },
        }


def _made_up_token_logprobs(token: str, top: int) -> dict[str, Any]:
    """The token at log-prob -0.05, then `top - 1` made-up alternatives, each far less likely."""
    return {
        "token": token,
        "logprob": -0.05,
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": token if rank == 0 else f"{token}~{rank}", "logprob": -0.05 - 3 * rank, "bytes": None}
            for rank in range(top)
        ],
    }


def _given_token_logprobs(reply: JudgeReply) -> dict[str, Any]:
    """The reply's one token with the log-probs the responder gave (all of them, whatever top_logprobs asked)."""
    top = [
        {"token": token, "logprob": logprob, "bytes": list(token.encode())}
        for token, logprob in reply.top_logprobs.items()
    ]
    return {
        "token": reply.text,
        "logprob": reply.top_logprobs.get(reply.text, -100.0),
        "bytes": list(reply.text.encode()),
        "top_logprobs": top,
    }


class _QuietServer(ThreadingHTTPServer):
    """Clients that time out or are dropped on purpose reset connections; that is not an error here."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(server: FakeJudgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            return

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            request = json.loads(body)
            fault = server.plan(body)
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault in ("401", "429", "500", "503"):
                headers = {"Retry-After": "0"} if fault == "429" else {}
                self._send(int(fault), {"error": {"message": f"injected {fault}", "type": "fault"}}, headers)
                return
            if fault == "slow":
                time.sleep(server.slow_s)
            if fault == "badjson":
                self._send_raw(200, b"<html>not json</html>", "application/json")
                return
            reply = (
                "lorem ipsum, no verdict here"
                if fault == "garbage"
                else server.responder(request["messages"])
            )
            payload = server.completion(request, reply)
            if fault is None:
                with server._lock:
                    server.answered += 1
            self._send(200, payload)

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

        def _send_raw(
            self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (timeout) before we answered

    return Handler
