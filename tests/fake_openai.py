"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted behaviours, chosen by model name.

Model names:
  fake-echo (any unknown name)  streams "Echo: <last user message>" word by word, with a usage chunk
  fake-tokens-<n>-<ms>          n tokens, ms apart (benchmarks, slow streams)
  fake-length                   stops with finish_reason "length"
  fake-length-<n>               writes "Part <k>. " where k-1 is the number of assistant messages sent,
                                stopping for "length" while k <= n (tests autocontinue)
  fake-length-then-fail         writes "Part 1. " and stops for "length"; a continuation (an assistant
                                message sent) gets HTTP 500 before any token
  fake-nousage                  no usage chunk (the client must estimate)
  fake-nofinish                 ends with [DONE] but never sends a finish_reason
  fake-drop-<n>                 sends n chunks, then drops the TCP connection
  fake-stall                    sends headers, then nothing
  fake-garbage-<n>              sends n chunks, then a line that is not JSON
  fake-inband-error-<n>         sends n chunks, then an OpenAI error object inside the stream
  fake-status-<code>            answers with that HTTP status and an OpenAI error body
  fake-exam                     answers exam JSON built from the prompt's <<<PASSAGE n | ...>>> blocks: as many
                                questions as "Write exactly <n>" asks, in Spanish ("¿Qué palabra aparece en el
                                pasaje n? «excerpt»"), 4 options, a hint when the prompt says "Hints: yes"
  fake-widget                   the web widget's tests: a Markdown answer chosen by the last user message,
                                word by word 30 ms apart: "unsafe" -> raw HTML (<script>, <img onerror>, a
                                javascript: link) that sets window.__pwned if executed, with **bold** text;
                                "long" -> 60 tokens "w0 w1 ..." 60 ms apart ("very long": 100 of them);
                                "stress" -> 60,000 characters of Markdown in 40-character chunks 2 ms apart;
                                else a short Markdown answer
  fake-exam-invalid-<n>         invalid exam output (no JSON, 3 options, answer out of range, in turn) for the
                                first n calls with this model since reset(), then as fake-exam; without -<n>, always

  fake-tools                    tool calls: a last user message with `call <name> <JSON arguments>` (several joined
                                by " ;; ") asks for those tools (when the request offers tools), after the words
                                "Checking. "; once the request ends with tool messages, answers
                                "Tool said: <content>" (" | " between several)
  fake-tools-loop               as fake-tools, but asks for the tools again whatever the tool messages say

POST /v1/embeddings answers with deterministic 64-dimension bag-of-words vectors in which a few
synonyms (kitten/cat, puppy/dog, automobile/car) share a dimension, so semantic matches that share
no word can be told from lexical ones; the model `fake-embed-fail` answers 500.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.loopback_server import LoopbackServer


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    # A stream's end as the server saw it: "completed", or "disconnected" when its client left first.
    outcome: str = ""

    @property
    def question(self) -> str:
        """The content of the request's last message (what was asked)."""
        messages = self.body.get("messages") or [{}]
        return str(messages[-1].get("content", ""))


@dataclass
class FakeOpenAI(LoopbackServer):
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    disconnects: int = 0
    completed: int = 0
    generation: int = 0  # reset() starts a new one

    thread_name = "fake-openai"

    def __post_init__(self) -> None:
        self._loopback_init()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def outcome_of(self, question: str) -> list[str]:
        """How each stream that asked `question` ended, in order ("" while it runs)."""
        return [r.outcome for r in self.requests if r.path.endswith("/chat/completions") and r.question == question]

    def reset(self) -> None:
        # A stream an earlier test left behind (`fake-stall` sleeps a minute before its first byte) ends
        # in a later test: its end counts for the test that asked it, not this one.
        self.generation += 1
        self.requests.clear()
        self.disconnects = 0
        self.completed = 0

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        return app

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    # -- behaviour -----------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = RecordedRequest(request.path, dict(request.headers), body)
        self.requests.append(record)
        model = str(body.get("model", ""))
        continued = model == "fake-length-then-fail" and self._part(body) > 1
        if continued or (match := re.fullmatch(r"fake-status-(\d{3})", model)):
            status = 500 if continued else int(match.group(1))
            headers = {"Retry-After": "7"} if status == 429 else {}
            error = {"error": {"message": f"scripted {status}", "type": "fake", "param": None, "code": None}}
            return web.json_response(error, status=status, headers=headers)
        if model.startswith("fake-tools") and (calls := self._tool_calls(model, body)):
            return await self._stream_tool_calls(request, model, body, calls, record)
        words = self._exam_words(model, body) if model.startswith("fake-exam") else self._words(model, body)
        if not body.get("stream"):
            return self._whole(model, body, words)
        return await self._stream(request, model, body, words, record)

    def _exam_words(self, model: str, body: dict[str, Any]) -> list[str]:
        calls = sum(1 for r in self.requests if r.path.endswith("/chat/completions") and r.body.get("model") == model)
        invalid = re.fullmatch(r"fake-exam-invalid(?:-(\d+))?", model)
        answer = self.exam_answer(body)
        if invalid and (invalid.group(1) is None or calls <= int(invalid.group(1))):
            if calls % 3 == 1:
                return ["Sorry, ", "no ", "JSON ", "today."]
            if calls % 3 == 2:
                answer["questions"][0]["options"] = answer["questions"][0]["options"][:3]
            else:
                answer["questions"][0]["answer"] = 7
        return re.findall(r"\S+\s*", json.dumps(answer, ensure_ascii=False))

    @staticmethod
    def exam_answer(body: dict[str, Any]) -> dict[str, Any]:
        prompt = next((m["content"] for m in body.get("messages", []) if m["role"] == "user"), "")
        count = int(m.group(1)) if (m := re.search(r"Write exactly (\d+) ", prompt)) else 1
        passages = re.findall(r"<<<PASSAGE (\d+) \| [^\n]*>>>\n(.*?)\n<<<END PASSAGE \1>>>", prompt, re.DOTALL)
        passages = passages or [("1", "sin texto")]
        questions = []
        for index in range(count):
            number, text = passages[index % len(passages)]
            words = list(dict.fromkeys(w for w in re.findall(r"\w+", text) if len(w) >= 4)) or ["nada"]
            word = words[index % len(words)]
            options = [word, f"alfa{index}", f"beta{index}", f"gamma{index}"]
            right = index % 4
            options[0], options[right] = options[right], options[0]
            excerpt = " ".join(text.split())[:300]
            questions.append(
                {
                    "question": f"¿Qué palabra aparece en el pasaje {number}? «{excerpt}» ({index + 1})",
                    "options": options,
                    "answer": right,
                    "hint": f"Mira el pasaje {number}." if "Hints: yes" in prompt else "",
                    "explanation": f"La palabra «{word}» está en el pasaje {number}.",
                    "source": int(number),
                }
            )
        return {"questions": questions}

    SYNONYMS = {"kitten": "cat", "kittens": "cat", "puppy": "dog", "automobile": "car"}
    EMBEDDING_DIMENSIONS = 64

    @classmethod
    def embedding(cls, text: str) -> list[float]:
        vector = [0.0] * cls.EMBEDDING_DIMENSIONS
        for word in re.findall(r"[a-z]+", text.lower()):
            word = cls.SYNONYMS.get(word, word)
            vector[zlib.crc32(word.encode()) % cls.EMBEDDING_DIMENSIONS] += 1.0
        return vector

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(RecordedRequest(request.path, dict(request.headers), body))
        if body.get("model") == "fake-embed-fail":
            return web.json_response({"error": {"message": "scripted", "type": "fake"}}, status=500)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response(
            {
                "object": "list",
                "model": body.get("model"),
                "data": [
                    {"object": "embedding", "index": index, "embedding": self.embedding(text)}
                    for index, text in enumerate(inputs)
                ],
                "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
            }
        )

    @staticmethod
    def _tool_calls(model: str, body: dict[str, Any]) -> list[tuple[str, str]]:
        """The (name, arguments) the scripted model asks for now: none once tools answered (fake-tools)."""
        messages = body.get("messages") or []
        if not body.get("tools") or (messages and messages[-1]["role"] == "tool" and model != "fake-tools-loop"):
            return []
        last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        calls = []
        for part in last_user.split(" ;; "):
            if match := re.search(r"call (\S+) (\{.*\})", part, re.S):
                calls.append((match.group(1), match.group(2)))
        return calls

    async def _stream_tool_calls(
        self, request: web.Request, model: str, body: dict[str, Any], calls: list[tuple[str, str]], record
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        await response.write(chunk({"role": "assistant", "content": "Checking. "}))
        for index, (name, arguments) in enumerate(calls):
            call_id = f"call_{len(self.requests)}_{index}"
            half = len(arguments) // 2
            first = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            await response.write(chunk({"tool_calls": [first]}))
            for fragment in (arguments[:half], arguments[half:]):
                await response.write(chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}))
        await response.write(chunk({}, "tool_calls"))
        if body.get("stream_options", {}).get("include_usage"):
            payload = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model, "choices": []}
            payload["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        record.outcome = "completed"
        return response

    @staticmethod
    def _part(body: dict[str, Any]) -> int:
        return 1 + sum(1 for m in body.get("messages", []) if m["role"] == "assistant")

    @classmethod
    def _finish(cls, model: str, body: dict[str, Any]) -> str | None:
        if model == "fake-nofinish":
            return None
        if model in ("fake-length", "fake-length-then-fail"):
            return "length"
        if match := re.fullmatch(r"fake-length-(\d+)", model):
            return "length" if cls._part(body) <= int(match.group(1)) else "stop"
        return "stop"

    @classmethod
    def _words(cls, model: str, body: dict[str, Any]) -> list[str]:
        if re.fullmatch(r"fake-length-(\d+)", model) or model == "fake-length-then-fail":
            return ["Part ", f"{cls._part(body)}. "]
        if match := re.fullmatch(r"fake-tokens-(\d+)-(\d+)", model):
            return [f"t{i} " for i in range(int(match.group(1)))]
        last_user = next((m["content"] for m in reversed(body.get("messages", [])) if m["role"] == "user"), "")
        if model.startswith("fake-tools"):
            answered = []
            for message in reversed(body.get("messages", [])):
                if message["role"] != "tool":
                    break
                answered.insert(0, str(message.get("content", "")))
            if answered:
                return re.findall(r"\S+\s*", "Tool said: " + " | ".join(answered))
        if model == "fake-widget" and "stress" in last_user:
            return [cls.WIDGET_STRESS[i : i + 40] for i in range(0, len(cls.WIDGET_STRESS), 40)]
        if model == "fake-widget":
            return re.findall(r"\S+\s*", cls.widget_answer(last_user))
        return re.findall(r"\S+\s*", f"Echo: {last_user}")

    WIDGET_UNSAFE = (
        "Here is **bold text** and raw HTML: <script>window.__pwned=1</script> and "
        '<img src=x onerror="window.__pwned=2"> and [a bad link](javascript:window.__pwned=3) '
        "and [a good link](https://example.com/docs)."
    )
    WIDGET_ANSWER = (
        "## The widget\n\nBytchat streams **every answer** as it is *written*:\n\n"
        "- one script tag\n- a publishable key\n\nSee `widget.js` for details."
    )

    WIDGET_STRESS = "".join(
        (f"## Part {i}\n\n" if i % 20 == 0 else "")
        + f"Line {i:03d} has **bold**, *italic*, `code` and [a link](https://example.com/{i:03d}).\n\n"
        + ("- an item\n- another item\n\n" if i % 7 == 0 else "")
        for i in range(720)
    )[:60_000]

    @classmethod
    def widget_answer(cls, question: str) -> str:
        if "unsafe" in question:
            return cls.WIDGET_UNSAFE
        if "long" in question:
            return "".join(f"w{i} " for i in range(100 if "very long" in question else 60))
        return cls.WIDGET_ANSWER

    @staticmethod
    def _usage(body: dict[str, Any], words: list[str]) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return {"prompt_tokens": prompt, "completion_tokens": len(words), "total_tokens": prompt + len(words)}

    def _whole(self, model: str, body: dict[str, Any], words: list[str]) -> web.Response:
        self.completed += 1
        return web.json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(words)},
                        "finish_reason": self._finish(model, body),
                    }
                ],
                "usage": self._usage(body, words),
            }
        )

    async def _stream(
        self, request: web.Request, model: str, body: dict[str, Any], words: list[str], record: RecordedRequest
    ) -> web.StreamResponse:
        generation = self.generation
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        delay = 0.0
        if match := re.fullmatch(r"fake-tokens-(\d+)-(\d+)", model):
            delay = int(match.group(2)) / 1000
        if model == "fake-widget":
            delay = 0.002 if len(words) > 1000 else 0.06 if words and words[0] == "w0 " else 0.03
        drop_after = int(m.group(1)) if (m := re.fullmatch(r"fake-drop-(\d+)", model)) else None
        broken = re.fullmatch(r"fake-(garbage|inband-error)-(\d+)", model)

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict | None = None) -> bytes:
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage:
                payload["usage"] = usage
            return f"data: {json.dumps(payload)}\n\n".encode()

        try:
            if model == "fake-stall":
                await asyncio.sleep(60)
            await response.write(chunk({"role": "assistant", "content": ""}))
            for index, word in enumerate(words):
                if broken and index >= int(broken.group(2)):
                    if broken.group(1) == "garbage":
                        await response.write(b"data: {not json at all\n\n")
                    else:
                        error = {"error": {"message": "scripted in-band failure", "type": "server_error"}}
                        await response.write(f"data: {json.dumps(error)}\n\n".encode())
                    await response.write(b"data: [DONE]\n\n")
                    await response.write_eof()
                    return response
                if drop_after is not None and index >= drop_after:
                    await asyncio.sleep(0.05)  # let the chunks already written reach the client
                    request.transport.close()
                    return response
                if delay:
                    await asyncio.sleep(delay)
                await response.write(chunk({"content": word}))
            finish = self._finish(model, body)
            await response.write(chunk({}, finish))
            if body.get("stream_options", {}).get("include_usage") and model != "fake-nousage":
                await response.write(chunk({}, usage=self._usage(body, words)))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            if generation == self.generation:
                self.completed += 1
            record.outcome = "completed"
        except (ConnectionResetError, asyncio.CancelledError):
            if generation == self.generation:
                self.disconnects += 1
            record.outcome = "disconnected"
            raise
        return response


if __name__ == "__main__":
    server = FakeOpenAI(port=8090).start()
    print(f"fake OpenAI server on {server.base_url}")
    threading.Event().wait()
