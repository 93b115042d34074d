"""llmx provider plugin ``llamacpp``: GGUF models run in process with llama-cpp-python.

No server, no API key: ``llmx chat -m llamacpp/smollm2 "Hi"`` answers from a model file
in the models directory (``llmx models pull smollm2`` fetches the default one).

* The chat is formatted with the model's own chat template (from the GGUF metadata).
* Generation runs in a worker thread; tokens are handed to the event loop as they come
  (``loop.call_soon_threadsafe`` into an ``asyncio.Queue``), so the loop never blocks,
  and leaving a stream (or cancelling the task) stops generation at the next token.
* A model is loaded once per process and per file (and load settings), off the event
  loop, and shared by every provider instance and client. Its requests queue on it
  in order: each model has one worker thread, which is also its lock.
* Stop sequences, ``max_tokens``, ``temperature``, ``top_p``, ``seed`` (same seed, same
  answer), JSON mode and JSON-schema output (llama.cpp grammars), exact token usage
  and model facts read from the GGUF header (context length), cost 0.
* Embeddings (``client.embed``): the same GGUF file loaded a second time in llama.cpp's
  embedding mode, mean-pooled over the tokens. No package on the package index ships a
  GGUF embedding model, so the local default is the chat model itself (``smollm2``:
  576 dimensions); any GGUF embedding model dropped in the models directory works
  the same way and is better at it.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import json
import os
import random
import threading
import time
import uuid
from array import array
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

import llmx
import llmx.plugin
import llmx.types
from llmx.plugin import ProviderContext, ResponseBuilder, hookimpl
from llmx_provider_llamacpp._gguf import GGUFError, context_length, read_metadata

if TYPE_CHECKING:
    from llmx.plugin import Register

llmx_contract = "1.0"

_CAPABILITIES = ("streaming", "json_mode", "json_schema", "system_prompt", "embeddings")
_DEFAULT_N_CTX = 8192
_EMBED_BATCH = 2048  # tokens per input in embedding mode (n_batch = n_ubatch), at most n_ctx


@attrs.frozen
class LlamaCppSettings:
    """``[providers.NAME]`` keys of a ``llamacpp`` instance.

    ``model_path``: one GGUF file this instance serves, whatever model name is asked
    (otherwise the name is looked up in ``models_dir``, default ``$LLMX_MODELS_DIR`` or
    ``~/.local/share/llmx/models``: ``smollm2``, or a file name with or without
    ``.gguf``). ``n_ctx``: context size (None: the model's own, at most 8192);
    ``n_threads``: CPU threads (None: half the cores, as llama-cpp-python does;
    more threads than idle cores slow llama.cpp down sharply); ``n_batch``: prompt batch size;
    ``n_gpu_layers``: layers to offload where llama.cpp was built with a GPU backend;
    ``chat_template``: a Jinja chat template replacing the model's own.
    """

    model_path: str | None = None
    models_dir: str | None = None
    n_ctx: int | None = None
    n_threads: int | None = None
    n_batch: int = 512
    n_gpu_layers: int = 0
    chat_template: str | None = None


# -- finding model files -------------------------------------------------------------------


def _models_dir(settings: LlamaCppSettings | None) -> Path:
    from llmx_provider_llamacpp._local import models_dir

    if settings is not None and settings.models_dir:
        return Path(settings.models_dir).expanduser()
    return models_dir()


def resolve_model_path(model: str, settings: LlamaCppSettings | None = None) -> Path | None:
    """The GGUF file that serves ``model``: ``model_path`` if set, else found by name."""
    from llmx_provider_llamacpp._local import find_model

    if settings is not None and settings.model_path:
        path = Path(settings.model_path).expanduser()
        return path if path.is_file() else None
    return find_model(model, _models_dir(settings))


def _missing_model(
    model: str, settings: LlamaCppSettings | None, instance: str
) -> llmx.ProviderError:
    from llmx_provider_llamacpp._local import KNOWN_MODELS

    if settings is not None and settings.model_path:
        msg = f"model_path {settings.model_path!r} is not a file; fix [providers.{instance}] model_path"
    elif model.lower() in KNOWN_MODELS:
        msg = (
            f"the model {model!r} is not in {_models_dir(settings)}: fetch it with "
            f"`llmx models pull {model.lower()}`"
        )
    else:
        msg = (
            f"no GGUF model {model!r} in {_models_dir(settings)}: put the .gguf file there, set "
            f"model_path in [providers.{instance}], or use a known model "
            f"({', '.join(sorted(KNOWN_MODELS))}: `llmx models pull NAME`)"
        )
    return llmx.ModelNotFoundError(msg, provider=instance, model=model)


def _info_for(model: str, path: Path) -> llmx.ModelInfo:
    try:
        metadata = read_metadata(path)
    except (GGUFError, OSError):
        metadata = {}
    return llmx.ModelInfo(
        model,
        context_window=context_length(metadata),
        capabilities=_CAPABILITIES,
        input_price=0.0,
        output_price=0.0,
    )


# -- the shared, loaded models ---------------------------------------------------------------


@attrs.frozen
class _LoadKey:
    path: str
    n_ctx: int | None
    n_threads: int | None
    n_batch: int
    n_gpu_layers: int
    embedding: bool = False


class _Cancelled(Exception):
    pass


class LoadedModel:
    """One GGUF model loaded in this process, with its single worker thread.

    The worker thread first loads the model, then runs one generation at a time, in
    submission order: requests for the model queue on it, and nothing ever blocks the
    event loop. Shared through :func:`shared_model`.
    """

    def __init__(self, key: _LoadKey) -> None:
        self.key = key
        self.path = Path(key.path)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"llmx-llamacpp-{self.path.stem}"
        )
        self.busy = threading.Lock()
        """Held by the worker thread while it uses the model (load or generation)."""
        self._llama: Any = None
        self.load_seconds: float | None = None
        self._loaded = self._executor.submit(self._load)

    def _load(self) -> Any:
        with self.busy:
            t0 = time.perf_counter()
            from llama_cpp import Llama

            key = self.key
            metadata_ctx = None
            try:
                metadata_ctx = context_length(read_metadata(self.path))
            except (GGUFError, OSError):
                pass
            n_ctx = key.n_ctx or min(metadata_ctx or _DEFAULT_N_CTX, _DEFAULT_N_CTX)
            threads = key.n_threads or max(1, (os.cpu_count() or 1) // 2)
            options: dict[str, Any] = {}
            n_batch = key.n_batch
            if key.embedding:
                # Mean pooling over the tokens: one vector per input whatever the model's
                # own pooling (a chat model has none). One input must fit one batch.
                from llama_cpp import LLAMA_POOLING_TYPE_MEAN

                n_batch = max(n_batch, min(_EMBED_BATCH, n_ctx))
                options = {
                    "embedding": True,
                    "pooling_type": LLAMA_POOLING_TYPE_MEAN,
                    "n_ubatch": n_batch,
                }
            self._llama = Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=n_batch,
                n_gpu_layers=key.n_gpu_layers,
                verbose=False,
                **options,
            )
            self.load_seconds = time.perf_counter() - t0
            return self._llama

    def submit(self, fn: Callable[[Any], Any]) -> concurrent.futures.Future[Any]:
        """Run ``fn(llama)`` on the model's worker thread, after what is queued before it."""

        def run() -> Any:
            llama = self._loaded.result()
            with self.busy:
                return fn(llama)

        return self._executor.submit(run)

    def loaded(self) -> concurrent.futures.Future[Any]:
        """A future of the loaded ``llama_cpp.Llama`` (or of the load error)."""
        return self._loaded

    def close(self) -> None:
        """Stop the worker thread once queued work is done and drop the model."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()


_shared: dict[_LoadKey, LoadedModel] = {}
_shared_lock = threading.Lock()


def shared_model(path: Path, settings: LlamaCppSettings, *, embedding: bool = False) -> LoadedModel:
    """The process-wide :class:`LoadedModel` for ``path`` with these load settings
    (loading starts on its worker thread the first time). ``embedding``: the model in
    llama.cpp's embedding mode (a second context of its own, mean-pooled)."""
    key = _LoadKey(
        str(path.resolve()),
        settings.n_ctx,
        settings.n_threads,
        settings.n_batch,
        settings.n_gpu_layers,
        embedding,
    )
    with _shared_lock:
        model = _shared.get(key)
        if model is None or _failed(model):
            model = _shared[key] = LoadedModel(key)
        return model


def _failed(model: LoadedModel) -> bool:
    fut = model.loaded()
    return fut.done() and fut.exception() is not None


def unload_all() -> None:
    """Unload every shared model (frees memory; the next request loads again)."""
    with _shared_lock:
        models = list(_shared.values())
        _shared.clear()
    for model in models:
        model.close()


# -- generation (on the worker thread) --------------------------------------------------------


_FEATURES: dict[type, str] = {
    llmx.Image: "vision",
    llmx.Document: "documents",
    llmx.Audio: "audio",
}
"""The feature a non-text part needs (named in the UnsupportedFeatureError)."""


def _messages(request: llmx.Request, instance: str) -> list[dict[str, str]]:
    out = []
    for m in request.messages:
        for part in m.content:
            if not isinstance(part, llmx.Text):
                msg = f"llama.cpp models here take text only, not {type(part).__name__} parts"
                raise llmx.UnsupportedFeatureError(
                    msg,
                    provider=instance,
                    model=request.model,
                    feature=_FEATURES.get(type(part), "tools"),
                )
        out.append({"role": m.role, "content": m.text})
    return out


def _format_prompt(
    llama: Any, req: llmx.Request, instance: str, chat_template: str | None
) -> tuple[Any, list[int]]:
    """The prompt the model's chat template makes of ``req``, and its tokens (the
    model's own tokenizer: what generation starts from, so its length is exact)."""
    from llama_cpp import llama_chat_format

    template = chat_template or llama.metadata.get("tokenizer.chat_template")
    if not template:
        msg = "the model has no chat template in its GGUF metadata; set chat_template"
        raise llmx.BadRequestError(msg, provider=instance, model=req.model)
    eos, bos = llama.token_eos(), llama.token_bos()
    formatter = llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=_token_text(llama, eos),
        bos_token=_token_text(llama, bos),
        stop_token_ids=[eos],
    )
    messages = _messages(req, instance)
    try:
        formatted = formatter(messages=messages)
    except Exception as err:  # jinja2 errors, e.g. a template refusing a role
        msg = f"the model's chat template refused the conversation: {type(err).__name__}: {err}"
        raise llmx.BadRequestError(msg, provider=instance, model=req.model) from err
    prompt = llama.tokenize(
        formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
    )
    return formatted, prompt


@attrs.define
class _Generation:
    """What one generation needs and reports (built on the loop, run on the worker)."""

    request: llmx.Request
    instance: str
    chat_template: str | None
    emit: Callable[[llmx.types.StreamChunk], None]
    cancel: threading.Event
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def run(self, llama: Any) -> None:
        from llama_cpp import llama_cpp

        if self.cancel.is_set():
            raise _Cancelled
        req = self.request
        formatted, prompt = _format_prompt(llama, req, self.instance, self.chat_template)
        self.prompt_tokens = len(prompt)
        n_ctx = llama.n_ctx()
        room = n_ctx - len(prompt)
        if room <= 0 or (req.max_tokens is not None and req.max_tokens > room):
            msg = (
                f"the prompt ({len(prompt)} tokens) plus max_tokens ({req.max_tokens}) do not "
                f"fit the context of {n_ctx} tokens"
            )
            raise llmx.ContextWindowExceededError(msg, provider=self.instance, model=req.model)
        max_tokens = room if req.max_tokens is None else req.max_tokens
        grammar = self._grammar(llama)
        stops = [s for s in (*req.stop, *_as_list(formatted.stop)) if s]
        llama.set_seed(req.seed if req.seed is not None else random.getrandbits(32))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = ""
        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        completion: list[int] = []
        if max_tokens == 0:
            self.finish_reason = "length"
            return
        for token in llama.generate(
            prompt,
            temp=req.temperature if req.temperature is not None else 0.2,
            top_p=req.top_p if req.top_p is not None else 0.95,
            top_k=40,
            min_p=0.05,
            repeat_penalty=1.1,
            grammar=grammar,
            stopping_criteria=lambda _ids, _logits: self.cancel.is_set(),
        ):
            if self.cancel.is_set():
                raise _Cancelled
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                self.finish_reason = "stop"
                break
            completion.append(token)
            self.completion_tokens += 1
            piece = llama.detokenize([token], prev_tokens=prompt + completion[:-1])
            held += decoder.decode(piece)
            held, stopped = self._emit_safe(held, stops)
            if stopped:
                self.finish_reason = "stop"
                return
            if self.completion_tokens >= max_tokens:
                self.finish_reason = "length"
                break
        else:
            if self.cancel.is_set():
                raise _Cancelled
        held += decoder.decode(b"", final=True)
        if held:
            self.emit(llmx.TextDelta(held))

    def _emit_safe(self, text: str, stops: Sequence[str]) -> tuple[str, bool]:
        """Emit what cannot be the start of a stop sequence; return what is held back."""
        if not stops:
            if text:
                self.emit(llmx.TextDelta(text))
            return "", False
        cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
        if cut >= 0:
            if cut:
                self.emit(llmx.TextDelta(text[:cut]))
            return "", True
        keep = 0
        for s in stops:
            for n in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:n]):
                    keep = max(keep, n)
                    break
        ready = text[: len(text) - keep]
        if ready:
            self.emit(llmx.TextDelta(ready))
        return text[len(text) - keep :], False

    def _grammar(self, llama: Any) -> Any:
        from llama_cpp import llama_grammar

        fmt = self.request.response_format
        if fmt.type == "text":
            return None
        try:
            if fmt.type == "json":
                return llama_grammar.LlamaGrammar.from_string(
                    llama_grammar.JSON_GBNF, verbose=False
                )
            return llama_grammar.LlamaGrammar.from_json_schema(
                json.dumps(dict(fmt.schema or {})), verbose=False
            )
        except (ValueError, RuntimeError, KeyError, TypeError) as err:
            msg = f"llama.cpp cannot turn this JSON schema into a grammar: {err}"
            raise llmx.UnsupportedFeatureError(
                msg, provider=self.instance, model=self.request.model, feature="json_schema"
            ) from err


def _token_text(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    return bytes(llama.detokenize([token], special=True)).decode("utf-8", errors="replace")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


# -- the provider ------------------------------------------------------------------------------


class LlamaCppProvider:
    """A ``llamacpp`` provider instance: GGUF models in this process (see the module doc)."""

    embedding_limits = llmx.plugin.EmbeddingLimits(max_inputs=64, dimensions=False)
    """Embeddings: 64 inputs per call to the model's worker thread, so a large request
    is embedded in steps that other requests (and cancellation) can come between; each
    input at most 2,048 tokens (the batch); no ``dimensions`` (refused before running)."""

    def __init__(self, ctx: ProviderContext) -> None:
        self._instance = ctx.instance
        self._settings: LlamaCppSettings = ctx.settings or LlamaCppSettings()
        self.model_info = self._model_info  # the instance knows its settings

    @staticmethod
    def model_info(model: str) -> llmx.ModelInfo | None:
        """Facts about ``model`` from its GGUF header (default models directory)."""
        path = resolve_model_path(model)
        return _info_for(model, path) if path is not None else None

    def _model_info(self, model: str) -> llmx.ModelInfo | None:
        path = resolve_model_path(model, self._settings)
        return _info_for(model, path) if path is not None else None

    async def list_models(self) -> Sequence[llmx.ModelInfo]:
        """The GGUF files in the models directory (or ``model_path``)."""
        return await asyncio.to_thread(self._list_models)

    def _list_models(self) -> list[llmx.ModelInfo]:
        from llmx_provider_llamacpp._local import local_models

        if self._settings.model_path:
            path = Path(self._settings.model_path).expanduser()
            return [_info_for(path.stem, path)] if path.is_file() else []
        return [_info_for(p.stem, p) for p in local_models(_models_dir(self._settings))]

    def _model(self, request: llmx.Request) -> LoadedModel:
        path = resolve_model_path(request.model, self._settings)
        if path is None:
            raise _missing_model(request.model, self._settings, self._instance)
        return shared_model(path, self._settings)

    async def complete(self, request: llmx.Request) -> llmx.Response:
        """Generate the whole answer (on the model's worker thread)."""
        builder = ResponseBuilder(request.model)
        async for chunk in self.stream(request):
            builder.add(chunk)
        return builder.build(provider=self._instance)

    async def stream(self, request: llmx.Request) -> AsyncIterator[llmx.types.StreamChunk]:
        """Yield the answer token by token; closing the stream stops generation."""
        # One answer, no logprobs (issue 15, item 7): refused before generating.
        from llmx.http import refuse_choices

        refuse_choices(request, api="the local llama.cpp provider", provider=self._instance)
        model = self._model(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()

        def put(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the loop is closed: nobody is listening any more
                cancel.set()

        gen = _Generation(
            request,
            self._instance,
            self._settings.chat_template,
            lambda chunk: put("chunk", chunk),
            cancel,
        )

        def work(llama: Any) -> None:
            try:
                gen.run(llama)
            except _Cancelled:
                put("cancelled", None)
            except BaseException as err:
                put("error", err)
            else:
                put("done", None)

        future = model.submit(work)
        future.add_done_callback(lambda f: _report_crash(f, put))
        try:
            while True:
                kind, value = await queue.get()
                if kind == "chunk":
                    yield value
                elif kind == "done":
                    break
                elif kind == "error":
                    raise self._error(value, model, request)
                else:  # cancelled from our side: nothing more comes
                    return
        finally:
            cancel.set()
            future.cancel()  # still queued behind another request: never runs
        usage = llmx.Usage(gen.prompt_tokens, gen.completion_tokens)
        yield llmx.StreamEnd(
            gen.finish_reason,  # type: ignore[arg-type]
            usage,
            request.model,
            f"llamacpp-{uuid.uuid4().hex[:16]}",
        )

    async def count_tokens(self, request: llmx.Request) -> int:
        """The input tokens of ``request``: the model's own tokenizer over the prompt its
        chat template makes (exact; on the model's worker thread, loading it if needed)."""
        model = self._model(request)
        instance, template = self._instance, self._settings.chat_template
        future = model.submit(
            lambda llama: len(_format_prompt(llama, request, instance, template)[1])
        )
        try:
            tokens: int = await asyncio.wrap_future(future)
        except Exception as err:
            raise self._error(err, model, request) from err
        return tokens

    async def embed(self, request: llmx.plugin.EmbeddingRequest) -> llmx.EmbeddingResponse:
        """Embed the inputs with the model in embedding mode (loaded once, beside the
        chat one; on its worker thread): the mean of each input's token embeddings, not
        normalised; usage is the exact token count, cost 0."""
        path = resolve_model_path(request.model, self._settings)
        if path is None:
            raise _missing_model(request.model, self._settings, self._instance)
        model = shared_model(path, self._settings, embedding=True)
        inputs = list(request.input)

        def work(llama: Any) -> tuple[list[list[float]], int]:
            # truncate=False: an input longer than the batch is an error, not cut short
            return llama.embed(inputs, truncate=False, return_count=True)  # type: ignore[no-any-return]

        future = model.submit(work)
        try:
            vectors, tokens = await asyncio.wrap_future(future)
        except ValueError as err:  # "Requested tokens (N) exceed batch size of M"
            msg = f"an input is too long to embed at once: {err}"
            raise llmx.ContextWindowExceededError(
                msg, provider=self._instance, model=request.model
            ) from err
        except Exception as err:
            raise self._error(err, model, request) from err
        return llmx.EmbeddingResponse(
            tuple(array("f", v) for v in vectors),
            request.model,
            self._instance,
            llmx.Usage(tokens, 0),
        )

    def _error(
        self,
        err: BaseException,
        model: LoadedModel,
        request: llmx.Request | llmx.plugin.EmbeddingRequest,
    ) -> BaseException:
        if isinstance(err, llmx.LlmxError):
            return err
        load_error = model.loaded().exception() if model.loaded().done() else None
        if load_error is err:
            msg = f"llama.cpp cannot load {model.path}: {type(err).__name__}: {err}"
            return llmx.ModelNotFoundError(msg, provider=self._instance, model=request.model)
        msg = f"llama.cpp failed: {type(err).__name__}: {err}"
        return llmx.ServerError(msg, provider=self._instance, model=request.model, retryable=False)


def _report_crash(future: concurrent.futures.Future[Any], put: Callable[[str, Any], None]) -> None:
    """If the work never ran its own reporting (e.g. the model failed to load), say so."""
    if future.cancelled():
        return
    err = future.exception()
    if err is not None:
        put("error", err)


@hookimpl
def llmx_register_providers(register: Register) -> None:
    """Register the ``llamacpp`` provider type (named like the entry point)."""
    register("llamacpp", LlamaCppProvider, settings=LlamaCppSettings)


@hookimpl
def llmx_register_model_sources(register: Register) -> None:
    """Offer the known GGUF models to ``llmx models pull`` and, once fetched, the default
    one to ``llmx chat`` on a machine where nothing is configured."""
    from llmx_provider_llamacpp._local import LlamaCppModels

    register("llamacpp", LlamaCppModels)
