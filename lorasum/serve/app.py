"""The HTTP API of ``lorasum serve``: FastAPI routes over the micro-batcher.

Status codes (every error body is ``{"error": "<one line>"}``):

* 400 malformed JSON; 422 a field out of range or of the wrong type, an empty text, a
  language code lorasum does not know, both or neither of ``text``/``texts``;
* 404 an adapter name that is not served, or a known language no adapter serves;
* 413 a text longer than ``max_chars`` or more than ``max_texts`` texts;
* 409 a language served by several adapters, with no ``adapter`` named;
* 504 no result within ``timeout_s`` (the server keeps running; the work is dropped if it
  had not started).
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lorasum.errors import LorasumError
from lorasum.serve.batcher import Job, MicroBatcher
from lorasum.serve.engine import Decoding, MultiAdapterModel
from lorasum.serve.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and the server's batching and decoding defaults."""

    max_chars: int = 20_000
    max_texts: int = 32
    max_batch_size: int = 16
    wait_s: float = 0.01
    timeout_s: float = 120.0
    defaults: Decoding = Decoding()


class SummarizeRequest(BaseModel):
    """One article (``text``) or several (``texts``) in one language, and optional decoding overrides."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    texts: list[str] | None = None
    lang: str
    adapter: str | None = None
    num_beams: int | None = Field(default=None, ge=1, le=8)
    max_new_tokens: int | None = Field(default=None, ge=1, le=512)
    length_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    no_repeat_ngram_size: int | None = Field(default=None, ge=0, le=8)

    @model_validator(mode="after")
    def _one_input(self):
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of \"text\" or \"texts\"")
        for t in [self.text] if self.text is not None else self.texts:
            if not t.strip():
                raise ValueError("texts must not be empty")
        if self.texts is not None and not self.texts:
            raise ValueError("\"texts\" must hold at least one text")
        return self


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


def create_app(engine: MultiAdapterModel, limits: Limits = Limits(), registry: Registry | None = None) -> FastAPI:
    """The FastAPI app serving ``engine``'s adapters; the model worker runs while the app runs.

    ``registry`` (default: the engine's) routes languages to adapter names; an engine without
    adapters (a merged model) serves every name in it with its own weights.
    """
    from lorasum.languages import normalize_lang

    batcher = MicroBatcher(engine.generate, max_batch_size=limits.max_batch_size, wait_s=limits.wait_s)
    registry = registry or engine.registry

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        batcher.stop()

    app = FastAPI(title="lorasum", description="Multilingual summarization: one base model, one LoRA adapter "
                  "per language, batches that mix them.", lifespan=lifespan)
    app.state.batcher = batcher

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, err: HTTPError):
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError):
        errors = err.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": "request body is not valid JSON"}, status_code=400)
        first = errors[0]
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or "body"
        return JSONResponse({"error": f"{where}: {first.get('msg')}"}, status_code=422)

    def route(req: SummarizeRequest) -> tuple[str, str]:
        try:
            lang = normalize_lang(req.lang)
        except LorasumError as err:
            raise HTTPError(422, f"lang: {str(err).split('. ')[0]}") from None
        if req.adapter is not None:
            if req.adapter not in registry.adapters:
                raise HTTPError(404, f"adapter {req.adapter!r} is not served; see GET /v1/adapters")
            return req.adapter, lang
        names = registry.by_lang.get(lang, [])
        if not names:
            raise HTTPError(404, f"no adapter serves language {lang!r}; see GET /v1/adapters")
        if len(names) > 1:
            raise HTTPError(409, f"language {lang!r} is served by {names}; name one in \"adapter\"")
        return names[0], lang

    @app.post("/v1/summarize")
    async def summarize(req: SummarizeRequest):
        """Summaries of ``text`` or ``texts``, made with the adapter named or the one serving ``lang``."""
        texts = [req.text] if req.text is not None else req.texts
        if len(texts) > limits.max_texts:
            raise HTTPError(413, f"texts: {len(texts)} texts; at most {limits.max_texts} per request")
        longest = max(len(t) for t in texts)
        if longest > limits.max_chars:
            raise HTTPError(413, f"text of {longest} characters; at most {limits.max_chars}")
        adapter, lang = route(req)
        overrides = {k: v for k, v in req.model_dump().items()
                     if k in ("num_beams", "max_new_tokens", "length_penalty", "no_repeat_ngram_size") and v is not None}
        decoding = Decoding(**{**limits.defaults.__dict__, **overrides})
        future = batcher.submit(Job(texts, [adapter] * len(texts), [lang] * len(texts), decoding))
        try:
            out = await asyncio.wait_for(asyncio.wrap_future(future), limits.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()
            raise HTTPError(504, f"no result within {limits.timeout_s:g} s; try fewer or shorter texts") from None
        except Exception as err:
            log.exception("generation failed")
            raise HTTPError(500, f"generation failed: {type(err).__name__}") from None
        if req.text is not None:
            return {"summary": out[0], "adapter": adapter}
        return {"summaries": out, "adapter": adapter}

    @app.get("/v1/adapters")
    async def adapters():
        """The adapters served, with the languages each serves."""
        return {"adapters": [{"name": e.name, "languages": list(e.languages)} for e in registry.adapters.values()]}

    @app.get("/health")
    async def health():
        return {"status": "ok", "adapters": len(registry.adapters)}

    return app


def serve(base: str, adapters_dir: str, *, host: str = "127.0.0.1", port: int = 8000,
          limits: Limits = Limits()) -> None:
    """Load ``base`` and the adapters under ``adapters_dir``; serve until interrupted."""
    import uvicorn

    from lorasum.serve.registry import discover

    engine = MultiAdapterModel(base, discover(adapters_dir))
    uvicorn.run(create_app(engine, limits), host=host, port=port, log_level="info")
