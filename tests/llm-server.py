#!/usr/bin/env python3
"""A scripted OpenAI-compatible chat completions server for the tests.

usage: llm-server.py --script FILE --log FILE --port-file FILE [--idle SECONDS]
                     [--tls CERT KEY] [--limit-requests N] [--limit-tokens T]
                     [--limit-window SECONDS]

Listens on 127.0.0.1 on a free port, written to --port-file once ready.
Each POST .../chat/completions is answered by the next step of the script
and logged to --log as one JSON line: n, t (monotonic seconds), method,
path, headers, body (parsed JSON when it is), client_port. The server exits
by itself after --idle seconds without a request. With --tls it speaks
HTTPS with the certificate CERT (PEM) and its key KEY; a client that
refuses the certificate never gets as far as a request.

The script is a JSON list of steps, or an object mapping a path prefix
("/a") to its own list, for several providers on one server, or an agent
("agent:builder", matched against the request's orch.context) to its own
list, for agents running at once. A step:

  status     HTTP status (default 200)
  headers    extra response headers, {"Retry-After": "1"}
  reply      a JSON value: answered as a chat completion whose
             message content is that value serialised
  content    a string: the same with this exact content; null for none
  parts      a list of strings: content as an array of text parts
  refusal    message.refusal (with content null unless given)
  reasoning  message.reasoning of the completion
  reasoning_content  message.reasoning_content (DeepSeek's name)
  finish     finish_reason (default "stop")
  usage      the completion's usage (default 11 prompt, 7 completion)
  model      the completion's model (default: the request's)
  stream     send the completion as a server-sent event stream
             (text/event-stream, the content in chunks of 20 bytes, then
             "data: [DONE]"), though the request said "stream": false
  body       a raw body instead (a string, or a JSON value serialised)
  error      shorthand for body {"error": {"message": ERROR, "type":
             "test"}}, to which these add members of the error object:
             type, code, param, failed_generation
  content_type  the response's Content-Type (default application/json)
  delay      seconds to wait before answering
  cut        send only this many bytes of the body, then close
  size       a body of this many bytes (an oversized reply)
  chunked    send the body chunked, without Content-Length

With --limit-requests or --limit-tokens the server enforces a rate limit
as Groq does, in windows of --limit-window seconds (default 60), each
starting at the first request after the last one ended: a request beyond
N requests, or beyond T tokens (its messages' bytes / 4 and its max_tokens)
in a window, is answered 429 with Retry-After (whole seconds) and an
error of code rate_limit_exceeded, and not counted; one larger than T
alone 413. Every answer carries x-ratelimit-limit-, -remaining- and
-reset-requests and -tokens ("1.25s"). The log's entries say "limited":
true for a refused request.

When the steps run out the server answers 418 "script exhausted". The
server takes up the script file, then removes it; a new file put in its
place (write it elsewhere, then rename it) is the script from the next
request on, so one server can serve a whole test file.
"""

import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, script_path, log_path):
        self.lock = threading.Lock()
        self.script_path = script_path
        self.script = []
        self.log_path = log_path
        self.count = 0
        self.last = time.monotonic()
        self.limit = None
        self.window_start = None
        self.used_requests = 0
        self.used_tokens = 0
        self.reload()

    def reload(self):
        """Take up a new script file, if one was put in place, and remove it."""
        try:
            with open(self.script_path, encoding="utf-8") as f:
                self.script = json.load(f)
            os.unlink(self.script_path)
        except FileNotFoundError:
            pass

    def next_step(self, path, request):
        with self.lock:
            self.reload()
            if isinstance(self.script, list):
                queue = self.script
            else:
                queue = None
                for key, steps in self.script.items():
                    if key.startswith("agent:"):
                        hit = agent_of(request) == key[6:]
                    else:
                        hit = path.startswith(key + "/")
                    if hit:
                        queue = steps
                        break
            if not queue:
                return {"status": 418, "error": "test server: script exhausted"}
            return queue.pop(0)

    def admit(self, request):
        """Count REQUEST against the limit: (status or None, headers)."""
        lim = self.limit
        if not lim:
            return None, {}, 0
        cost = request_tokens(request)
        with self.lock:
            now = time.monotonic()
            if self.window_start is None or now >= self.window_start + lim["window"]:
                self.window_start = now
                self.used_requests = 0
                self.used_tokens = 0
            status = None
            if lim["tokens"] and cost > lim["tokens"]:
                status = 413
            elif (lim["requests"] and self.used_requests + 1 > lim["requests"]) or \
                    (lim["tokens"] and self.used_tokens + cost > lim["tokens"]):
                status = 429
            else:
                self.used_requests += 1
                self.used_tokens += cost
            reset = max(0.0, self.window_start + lim["window"] - now)
            headers = {}
            for kind, used in (("requests", self.used_requests), ("tokens", self.used_tokens)):
                if lim[kind]:
                    headers["x-ratelimit-limit-" + kind] = str(lim[kind])
                    headers["x-ratelimit-remaining-" + kind] = str(max(0, lim[kind] - used))
                    headers["x-ratelimit-reset-" + kind] = "%.2fs" % reset
            if status == 429:
                headers["retry-after"] = str(max(1, int(reset + 0.999)))
            return status, headers, cost

    def record(self, entry):
        with self.lock:
            self.count += 1
            entry["n"] = self.count
            self.last = time.monotonic()
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")


def agent_of(request):
    """The "agent" of the orch.context in the request's user message."""
    try:
        text = request["messages"][1]["content"]
        return json.loads(text[text.index("{"):])["agent"]
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def request_tokens(request):
    """What a request counts against a token limit: its prompt and ceiling."""
    if not isinstance(request, dict):
        return 0
    size = 0
    for m in request.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            size += len(content.encode())
    ceiling = request.get("max_tokens") or request.get("max_completion_tokens") or 0
    return size // 4 + (ceiling if isinstance(ceiling, int) else 0)


def completion(step, request):
    if "content" in step:
        content = step["content"]
    elif "parts" in step:
        content = [{"type": "text", "text": t} for t in step["parts"]]
    elif "reply" in step:
        content = json.dumps(step["reply"])
    else:
        content = None
    message = {"role": "assistant", "content": content}
    for key in ("reasoning", "reasoning_content", "refusal"):
        if key in step:
            message[key] = step[key]
    model = step.get("model")
    if model is None and isinstance(request, dict):
        model = request.get("model")
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model or "test-model",
        "choices": [{"index": 0, "message": message,
                     "finish_reason": step.get("finish", "stop")}],
        "usage": step.get("usage", {"prompt_tokens": 11, "completion_tokens": 7,
                                    "total_tokens": 18}),
    }


def event_stream(done):
    """A chat completion as the chunks of a stream would carry it."""
    message = done["choices"][0]["message"]
    content = message.get("content") or ""
    head = {k: done[k] for k in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk"
    chunks = [dict(head, choices=[{"index": 0, "delta": {"role": "assistant"},
                                   "finish_reason": None}])]
    for key in ("reasoning", "reasoning_content"):
        if message.get(key):
            chunks.append(dict(head, choices=[{"index": 0, "delta": {key: message[key]},
                                               "finish_reason": None}]))
    for i in range(0, len(content), 20):
        chunks.append(dict(head, choices=[{"index": 0,
                                           "delta": {"content": content[i:i + 20]},
                                           "finish_reason": None}]))
    chunks.append(dict(head, choices=[{"index": 0, "delta": {},
                                       "finish_reason": done["choices"][0]["finish_reason"]}],
                       usage=done["usage"]))
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + \
        b"data: [DONE]\n\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the
    # second waits for the client's delayed ACK (40 ms) on a reused
    # connection, which would measure the kernel, not the client.
    disable_nagle_algorithm = True
    server_version = "llm-test-server/1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.answer({"status": 404, "error": "not found"}, None)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        limited, limit_headers, cost = None, {}, 0
        if self.path.endswith("/chat/completions"):
            limited, limit_headers, cost = self.server.state.admit(body)
        entry = {
            "t": time.monotonic(),
            "method": self.command,
            "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
            "body": body,
            "client_port": self.client_address[1],
        }
        if limited:
            entry["limited"] = True
        self.server.state.record(entry)
        if not self.path.endswith("/chat/completions"):
            self.answer({"status": 404, "error": "no such path: " + self.path}, body)
            return
        if limited == 413:
            step = {"status": 413, "error": "Request too large on tokens per minute"
                    " (TPM): Limit %d, Requested %d" % (self.server.state.limit["tokens"], cost),
                    "type": "tokens", "code": "rate_limit_exceeded"}
        elif limited == 429:
            step = {"status": 429, "error": "Rate limit reached. Please try again in %ss."
                    % limit_headers.get("retry-after"), "type": "requests",
                    "code": "rate_limit_exceeded"}
        else:
            step = self.server.state.next_step(self.path, body)
        if limit_headers:
            step = dict(step, headers=dict(limit_headers, **step.get("headers", {})))
        self.answer(step, body)

    def answer(self, step, request):
        status = step.get("status", 200)
        if "size" in step:
            payload = b'{"pad":"' + b"x" * max(0, step["size"] - 10) + b'"}'
        elif "body" in step:
            b = step["body"]
            payload = (b if isinstance(b, str) else json.dumps(b)).encode()
        elif "error" in step:
            error = {"message": step["error"], "type": "test"}
            for key in ("type", "code", "param", "failed_generation"):
                if key in step:
                    error[key] = step[key]
            payload = json.dumps({"error": error}).encode()
        elif step.get("stream"):
            payload = event_stream(completion(step, request))
        else:
            payload = json.dumps(completion(step, request)).encode()
        content_type = step.get("content_type",
                                "text/event-stream" if step.get("stream")
                                else "application/json")
        try:
            if step.get("delay"):
                time.sleep(step["delay"])
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in step.get("headers", {}).items():
                self.send_header(name, str(value))
            if step.get("chunked"):
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(payload)))
            if "cut" in step:
                self.send_header("Connection", "close")
            self.end_headers()
            if "cut" in step:
                self.wfile.write(payload[:step["cut"]])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif step.get("chunked"):
                for i in range(0, len(payload), 65536):
                    part = payload[i:i + 65536]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: a hundred clients at once
    # would see SYNs dropped and wait out TCP's 1 s and 3 s retransmits,
    # which measures the server, not the client.
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # A client that gave up (a timeout, an oversized reply) is expected.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--script", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--idle", type=float, default=30)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--limit-requests", type=int, default=0)
    ap.add_argument("--limit-tokens", type=int, default=0)
    ap.add_argument("--limit-window", type=float, default=60)
    args = ap.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.state = State(args.script, args.log)
    if args.limit_requests or args.limit_tokens:
        server.state.limit = {"requests": args.limit_requests, "tokens": args.limit_tokens,
                              "window": args.limit_window}
    open(args.log, "a").close()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)

    def watchdog():
        while time.monotonic() - server.state.last < args.idle:
            time.sleep(0.2)
        server.shutdown()

    threading.Thread(target=watchdog, daemon=True).start()
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
