"""A real local OpenAI-compatible judge (stdlib http.server) for AlpacaEval tests.

It answers POST /v1/chat/completions with one token and `top_logprobs` for 'm' and 'M', preferring the
longer of the two outputs in the prompt: P(identifier) = len(its output) / (len(output m) + len(output M)).
So the model's preference in alpaca_eval's terms is 1 + len(model) / (len(model) + len(baseline)),
whatever order the judge shows them in, and a test can compute the expected win rate by hand.
"""

from __future__ import annotations

import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUTPUT_PATTERN = re.compile(r'"model_identifier": "(m|M)",\s*"output": """(.*?)"""\n\s*}', re.DOTALL)


def judge_probabilities(prompt: str) -> dict[str, float]:
    """P('m') and P('M') from the lengths of the two outputs shown in the prompt."""
    outputs = dict(OUTPUT_PATTERN.findall(prompt))
    length_m, length_big_m = len(outputs.get("m", "")), len(outputs.get("M", ""))  # a probe shows none
    total = length_m + length_big_m
    if total == 0:
        return {"m": 0.5, "M": 0.5}
    return {"m": length_m / total, "M": length_big_m / total}


class JudgeServer:
    """Start with `start()`; `url` is the /v1 base; `requests` counts the chat calls served."""

    def __init__(self, *, with_logprobs: bool = True, unparseable=None) -> None:
        self.with_logprobs = with_logprobs
        self.unparseable = unparseable  # prompt -> True: answer with tokens that are neither 'm' nor 'M'
        self.requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> JudgeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def completion(self, body: dict) -> dict:
        prompt = "\n".join(message["content"] for message in body["messages"])
        probabilities = judge_probabilities(prompt)
        if self.unparseable is not None and self.unparseable(prompt):
            probabilities = {"Both": 0.6, "Neither": 0.4}
        best = max(probabilities, key=probabilities.get)
        top = [
            {"token": token, "logprob": math.log(p) if p > 0 else -100.0, "bytes": list(token.encode())}
            for token, p in probabilities.items()
        ]
        logprobs = (
            {"content": [{**top[list(probabilities).index(best)], "top_logprobs": top}]}
            if self.with_logprobs
            else None
        )
        n_prompt = len(prompt.split())
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "judge"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "length",
                    "message": {"role": "assistant", "content": best},
                    "logprobs": logprobs,
                }
            ],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": 1, "total_tokens": n_prompt + 1},
        }

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests += 1
                payload = json.dumps(server.completion(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                return

        return Handler
