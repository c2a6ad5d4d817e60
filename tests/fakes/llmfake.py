#!/usr/bin/env python3
"""tests/fakes/llmfake.py - fake LLM providers for the llm plugin's tests.

Python stdlib only, loopback only, on a port the kernel picks (written to --port-file).
One server speaks three wire formats, chosen by path as the real services do:
  POST /v1/chat/completions                     OpenAI chat completions
  POST /v1/messages                             Anthropic Messages
  POST /v1beta/models/M:generateContent         Google Gemini
  POST /v1beta/models/M:streamGenerateContent?alt=sse
Requests are checked the way the real services check them (auth header, required
fields such as Anthropic's max_tokens and anthropic-version, roles, OpenAI's rule that
json_object mode needs the word JSON) and refused with each provider's error body.
The MODEL name picks the scenario:
  ok            echoes the last user message ("echo: ...")
  tools         calls get_weather {"city": "Paris"}
  tools-bad     calls get_weather without its required argument
  tools-unknown calls a tool the request did not offer
  json          answers {"title": "fake", "score": 7}
  json-fenced   the same inside a ```json fence
  json-invalid  answers prose, not JSON
  json-wrong    answers {"title": 5}
  json-list     answers [1, 2, 2, "x"]
  json-flaky    answers like json-wrong and json by turns (1st wrong, 2nd right, ...)
  json-real     answers {"n": 3.0, "s": "café"}
  errNNN        answers HTTP NNN with the provider's error body (429 adds Retry-After: 3;
                Gemini's 429 says "retryDelay": "4s" in the body instead, as Google does)
  slow          waits 3 s before answering
  truncated     cuts the answer short (body or stream) and closes the connection
  malformed     answers 200 with broken JSON (or a broken stream event)
  oversized     answers ~2 MB of text
  stream-error  sends an error event in the middle of a stream
  length        stops at max_tokens (finish reason length)
  sse-odd       (OpenAI, streamed) legal but unusual SSE: comments, id/retry fields,
                multi-line data, mixed line ends, no blank line after the last event
  error200      (OpenAI, not streamed) an error body with status 200, as some local servers do
Every request is appended to --log as one JSON line: provider, path, headers, body.
With --tls-cert/--tls-key it speaks HTTPS, as the real services do.
"""
import argparse
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


class Refuse(Exception):
    def __init__(self, code, kind, msg):
        super().__init__(msg)
        self.code, self.kind, self.msg = code, kind, msg


def error_body(provider, code, kind, msg):
    if provider == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": msg}}
    if provider == "gemini":
        status = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                  404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                  503: "UNAVAILABLE"}.get(code, "UNKNOWN")
        err = {"code": code, "message": msg, "status": status}
        if code == 429:
            # Google says how long to wait in the body (RetryInfo), not in a header.
            err["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                               "retryDelay": "4s"}]
        return {"error": err}
    return {"error": {"message": msg, "type": kind, "param": None, "code": kind}}


def estimate(text):
    return max(1, len(text) // 4)


def pieces(text, n=7):
    return [text[i:i + n] for i in range(0, len(text), n)] or [""]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llmfake/1"

    def log_message(self, fmt, *args):
        pass

    # ---- plumbing ---------------------------------------------------------------
    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def sse(self, data, event=None):
        """One event. Gemini ends lines with CRLF, as Google's servers do; every event is
        written in two pieces so that clients must cope with events split across reads."""
        nl = "\r\n" if self.crlf else "\n"
        out = ""
        if event:
            out += "event: %s%s" % (event, nl)
        out += "data: %s%s%s" % (data if isinstance(data, str) else json.dumps(data), nl, nl)
        raw = out.encode()
        half = len(raw) // 2
        self.wfile.write(raw[:half])
        self.wfile.flush()
        if self.pace:
            time.sleep(0.001)
        self.wfile.write(raw[half:])
        self.wfile.flush()
        if self.pace:
            time.sleep(0.001)

    def cut(self, text):
        """Promise a long body, send part of it, hang up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(text) * 2))
        self.end_headers()
        self.wfile.write(text.encode())
        self.wfile.flush()
        self.close_connection = True

    # ---- the request --------------------------------------------------------------
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        u = urllib.parse.urlsplit(self.path)
        if u.path.endswith("/chat/completions"):
            provider = "openai"
        elif u.path.endswith("/messages"):
            provider = "anthropic"
        elif ":generateContent" in u.path or ":streamGenerateContent" in u.path:
            provider = "gemini"
        else:
            self.send_json(404, {"error": {"message": "no route " + u.path}})
            return
        self.pace = True
        self.crlf = provider == "gemini"
        with LOCK, open(self.server.log_path, "a") as f:
            f.write(json.dumps({"provider": provider, "path": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": raw.decode("utf-8", "replace")}) + "\n")
        try:
            try:
                req = json.loads(raw)
            except ValueError:
                raise Refuse(400, "invalid_request_error", "body is not JSON")
            getattr(self, "serve_" + provider)(req, u)
        except Refuse as r:
            extra = {"Retry-After": "3"} if r.code == 429 and provider != "gemini" else {}
            self.send_json(r.code, error_body(provider, r.code, r.kind, r.msg), extra)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def check_key(self, header, prefix=""):
        want = self.server.api_key
        if want and self.headers.get(header) != prefix + want:
            raise Refuse(401, "authentication_error", "invalid api key")

    def scenario_common(self, model):
        if model.startswith("err") and model[3:].isdigit():
            code = int(model[3:])
            kind = {429: "rate_limit_error", 529: "overloaded_error", 500: "api_error",
                    503: "api_error", 401: "authentication_error"}.get(code, "invalid_request_error")
            raise Refuse(code, kind, "fake %d for model %s" % (code, model))
        if model == "slow":
            time.sleep(3)

    def answer_for(self, model, last_user, max_tokens):
        """(text, tool_calls, finish) for a scenario; tool_calls = [(id, name, args)]."""
        if model.startswith("tools"):
            name = "launch_rockets" if model == "tools-unknown" else "get_weather"
            args = {} if model == "tools-bad" else {"city": "Paris"}
            return "", [("call_1", name, args)], "tool_calls"
        self.pace = model != "oversized"
        if model == "json-flaky":
            # Wrong on the 1st, 3rd, ... request, right on the others: what a retry fixes.
            with LOCK:
                self.server.flaky = getattr(self.server, "flaky", 0) + 1
                model = "json-wrong" if self.server.flaky % 2 else "json"
        text = {
            "json": '{"title": "fake", "score": 7}',
            "json-fenced": '```json\n{"title": "fake", "score": 7}\n```',
            "json-invalid": "Sure! Here is the answer you asked for.",
            "json-wrong": '{"title": 5}',
            "json-list": '[1, 2, 2, "x"]',
            "json-real": '{"n": 3.0, "s": "caf\u00e9"}',
            "oversized": "y" * 2_000_000,
        }.get(model, "echo: " + last_user)
        if model == "length" or (model != "oversized" and max_tokens and
                                 estimate(text) > max_tokens):
            return text[:max(1, (max_tokens or 1) * 4)], [], "length"
        return text, [], "stop"

    # ---- OpenAI ---------------------------------------------------------------------
    def serve_openai(self, req, u):
        self.check_key("Authorization", "Bearer ")
        model = req.get("model")
        msgs = req.get("messages")
        if not isinstance(model, str) or not isinstance(msgs, list) or not msgs:
            raise Refuse(400, "invalid_request_error", "'model' and 'messages' are required")
        for m in msgs:
            if m.get("role") not in ("system", "user", "assistant", "tool") or \
                    not isinstance(m.get("content"), (str, type(None))):
                raise Refuse(400, "invalid_request_error", "bad message %r" % (m,))
        rf = req.get("response_format") or {}
        if rf.get("type") == "json_object" and \
                not any("json" in (m.get("content") or "").lower() for m in msgs):
            raise Refuse(400, "invalid_request_error",
                         "'messages' must contain the word 'json' to use json_object")
        if rf.get("type") == "json_schema" and not isinstance(
                (rf.get("json_schema") or {}).get("schema"), dict):
            raise Refuse(400, "invalid_request_error", "json_schema.schema is required")
        self.scenario_common(model)
        last = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
        text, calls, finish = self.answer_for(model, last, req.get("max_tokens"))
        usage = {"prompt_tokens": sum(estimate(m.get("content") or "") for m in msgs),
                 "completion_tokens": estimate(text) + 10 * len(calls)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": model + "-0001",
                "system_fingerprint": None}
        if not req.get("stream"):
            msg = {"role": "assistant", "content": text if not calls else None}
            if calls:
                msg["tool_calls"] = [{"id": i, "type": "function",
                                      "function": {"name": n, "arguments": json.dumps(a)}}
                                     for i, n, a in calls]
            resp = dict(base, object="chat.completion", usage=usage,
                        choices=[{"index": 0, "message": msg, "logprobs": None,
                                  "finish_reason": finish}])
            if model == "truncated":
                return self.cut(json.dumps(resp)[:60])
            if model == "malformed":
                return self.send_raw(b'{"id": "chatcmpl-fake", "choices": [{"index": 0, "mess')
            if model == "error200":
                return self.send_json(200, {"error": {"message": "model 'error200' crashed"}})
            return self.send_json(200, resp)
        self.start_sse()
        chunk = dict(base, object="chat.completion.chunk")
        if model == "sse-odd":
            return self.sse_odd(chunk, usage)
        self.sse(dict(chunk, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                       "logprobs": None, "finish_reason": None}]))
        for k, p in enumerate(pieces(text)):
            if model == "truncated" and k == 1:
                return
            if model == "malformed" and k == 1:
                self.wfile.write(b'data: {"choices": [{"delta": {"content": "x"\n\n')
                return
            if model == "stream-error" and k == 1:
                return self.sse({"error": {"message": "The server had an error while processing "
                                                      "your request", "type": "server_error"}})
            if p:
                self.sse(dict(chunk, choices=[{"index": 0, "delta": {"content": p},
                                               "finish_reason": None}]))
        for idx, (cid, name, args) in enumerate(calls):
            self.sse(dict(chunk, choices=[{"index": 0, "delta": {"tool_calls": [
                {"index": idx, "id": cid, "type": "function",
                 "function": {"name": name, "arguments": ""}}]}, "finish_reason": None}]))
            for p in pieces(json.dumps(args), 5):
                self.sse(dict(chunk, choices=[{"index": 0, "delta": {"tool_calls": [
                    {"index": idx, "function": {"arguments": p}}]}, "finish_reason": None}]))
        self.sse(dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": finish}]))
        if (req.get("stream_options") or {}).get("include_usage"):
            self.sse(dict(chunk, choices=[], usage=usage))
        self.sse("[DONE]")

    def sse_odd(self, chunk, usage):
        """Legal SSE that naive parsers trip on: comments, id/retry fields, "data:"
        without a space, one JSON value spread over several data lines, CRLF and LF
        mixed, and a final event with no blank line before the connection closes."""
        first = json.dumps(dict(chunk, choices=[{"index": 0, "delta": {"content": "odd "},
                                                 "finish_reason": None}]), indent=1)
        out = ": keep-alive\r\n\r\nretry: 1000\nid: 1\n"
        out += "".join("data:%s\n" % line for line in first.split("\n")) + "\n"
        out += "data: " + json.dumps(dict(chunk, choices=[{"index": 0, "delta": {
            "content": "but fine"}, "finish_reason": "stop"}])) + "\r\n\r\n"
        out += ": another comment\n\n"
        out += "data: " + json.dumps(dict(chunk, choices=[], usage=usage)) + "\n\n"
        out += "data: [DONE]"
        for i in range(0, len(out), 13):  # in small pieces, lines split anywhere
            self.wfile.write(out[i:i + 13].encode())
            self.wfile.flush()

    def send_raw(self, body, ctype="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # ---- Anthropic ------------------------------------------------------------------
    def serve_anthropic(self, req, u):
        self.check_key("x-api-key")
        if not self.headers.get("anthropic-version"):
            raise Refuse(400, "invalid_request_error", "anthropic-version header is required")
        model, msgs = req.get("model"), req.get("messages")
        if not isinstance(req.get("max_tokens"), int):
            raise Refuse(400, "invalid_request_error", "max_tokens: Field required")
        if not isinstance(model, str) or not isinstance(msgs, list) or not msgs:
            raise Refuse(400, "invalid_request_error", "model and messages are required")
        for m in msgs:
            if m.get("role") not in ("user", "assistant"):
                raise Refuse(400, "invalid_request_error",
                             "messages: Unexpected role %r. Use the top-level system parameter"
                             % m.get("role"))
        if "system" in req and not isinstance(req["system"], (str, list)):
            raise Refuse(400, "invalid_request_error", "system must be a string")
        for t in req.get("tools") or []:
            if "input_schema" not in t:
                raise Refuse(400, "invalid_request_error", "tools.0.input_schema: Field required")
        if model == "err529" or model.startswith("err"):
            self.scenario_common(model)
        self.scenario_common(model)
        last = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
        text, calls, finish = self.answer_for(model, last, req["max_tokens"])
        stop = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}[finish]
        usage = {"input_tokens": sum(estimate(m["content"]) for m in msgs) +
                 estimate(req.get("system") or ""),
                 "output_tokens": estimate(text) + 10 * len(calls)}
        if not req.get("stream"):
            content = ([{"type": "text", "text": text}] if text else []) + \
                [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in calls]
            resp = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                    "content": content, "stop_reason": stop, "stop_sequence": None,
                    "usage": usage}
            if model == "truncated":
                return self.cut(json.dumps(resp)[:60])
            if model == "malformed":
                return self.send_raw(b'{"id": "msg_fake", "content": [{"type": "te')
            return self.send_json(200, resp)
        self.start_sse()
        self.sse({"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "content": [],
            "model": model, "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}},
            "message_start")
        idx = 0
        if text:
            self.sse({"type": "content_block_start", "index": 0,
                      "content_block": {"type": "text", "text": ""}}, "content_block_start")
            self.sse({"type": "ping"}, "ping")
            for k, p in enumerate(pieces(text)):
                if model == "truncated" and k == 1:
                    return
                if model == "malformed" and k == 1:
                    self.wfile.write(b'event: content_block_delta\ndata: {"type": "content_blo\n\n')
                    return
                if model == "stream-error" and k == 1:
                    return self.sse({"type": "error", "error": {
                        "type": "overloaded_error", "message": "Overloaded"}}, "error")
                self.sse({"type": "content_block_delta", "index": 0,
                          "delta": {"type": "text_delta", "text": p}}, "content_block_delta")
            self.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            idx = 1
        for cid, name, args in calls:
            self.sse({"type": "content_block_start", "index": idx, "content_block": {
                "type": "tool_use", "id": cid, "name": name, "input": {}}}, "content_block_start")
            for p in pieces(json.dumps(args), 5):
                self.sse({"type": "content_block_delta", "index": idx,
                          "delta": {"type": "input_json_delta", "partial_json": p}},
                         "content_block_delta")
            self.sse({"type": "content_block_stop", "index": idx}, "content_block_stop")
            idx += 1
        self.sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                  "usage": {"output_tokens": usage["output_tokens"]}}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")

    # ---- Gemini ---------------------------------------------------------------------
    def serve_gemini(self, req, u):
        self.check_key("x-goog-api-key")
        name = urllib.parse.unquote(u.path.rsplit("/", 1)[1])
        model, method = name.split(":", 1)
        stream = method == "streamGenerateContent"
        if stream and urllib.parse.parse_qs(u.query).get("alt") != ["sse"]:
            raise Refuse(400, "invalid_argument", "this fake only streams with alt=sse")
        contents = req.get("contents")
        if not isinstance(contents, list) or not contents:
            raise Refuse(400, "invalid_argument", "contents is not specified")
        for c in contents:
            if c.get("role") not in ("user", "model") or not isinstance(c.get("parts"), list):
                raise Refuse(400, "invalid_argument",
                             "Please use a valid role: user, model.")
        self.scenario_common(model)
        last = next((c["parts"][0].get("text", "") for c in reversed(contents)
                     if c["role"] == "user"), "")
        gc = req.get("generationConfig") or {}
        text, calls, finish = self.answer_for(model, last, gc.get("maxOutputTokens"))
        reason = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}[finish]
        usage = {"promptTokenCount": sum(estimate(c["parts"][0].get("text", ""))
                                         for c in contents),
                 "candidatesTokenCount": estimate(text) + 10 * len(calls)}
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
        parts = ([{"text": text}] if text else []) + \
            [{"functionCall": {"name": n, "args": a}} for _, n, a in calls]
        resp = {"candidates": [{"content": {"parts": parts, "role": "model"},
                                "finishReason": reason, "index": 0}],
                "usageMetadata": usage, "modelVersion": model + "-001"}
        if not stream:
            if model == "truncated":
                return self.cut(json.dumps(resp)[:60])
            if model == "malformed":
                return self.send_raw(b'{"candidates": [{"content": {"par')
            return self.send_json(200, resp)
        self.start_sse()
        chunks = pieces(text) if text else []
        for k, p in enumerate(chunks):
            if model == "truncated" and k == 1:
                return
            if model == "malformed" and k == 1:
                self.wfile.write(b'data: {"candidates": [{"content": \r\n\r\n')
                return
            if model == "stream-error" and k == 1:
                return self.sse({"error": {"code": 503, "message": "The model is overloaded.",
                                           "status": "UNAVAILABLE"}})
            last_chunk = k == len(chunks) - 1 and not calls
            cand = {"content": {"parts": [{"text": p}], "role": "model"}, "index": 0}
            if last_chunk:
                cand["finishReason"] = reason
            self.sse({"candidates": [cand], "modelVersion": model + "-001",
                      "usageMetadata": usage if last_chunk else
                      {"promptTokenCount": usage["promptTokenCount"]}})
        if calls:
            self.sse({"candidates": [{"content": {"parts": parts[-len(calls):], "role": "model"},
                                      "finishReason": reason, "index": 0}],
                      "usageMetadata": usage, "modelVersion": model + "-001"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--api-key", default="")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.log_path = a.log
    srv.api_key = a.api_key
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
