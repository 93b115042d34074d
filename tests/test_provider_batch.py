"""Provider batch APIs in-process, the same checks for OpenAI, Azure OpenAI, Anthropic and
Gemini: the library call against each vendor's fake (whose creates are validated against
the vendor's published schema), partial errors, expiry, cancellation, splitting to the
vendor's limits, a create whose answer was lost, refusal, and the parsers' properties.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx._provider_batch import (
    Chunk,
    StateFile,
    batch_cost,
    state_path,
    vendor_id,
)
from llmx.plugin import BatchJob
from llmx.testing import ErrorReply, Reply, scripted_client
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer

VENDORS: dict[str, tuple[type[Any], str, str, str]] = {
    # type, fake, model, module with MAX_REQUESTS / MAX_BYTES, expired lifecycle
    "openai": (FakeOpenAIServer, "gpt-4o-mini", "llmx_openai._batch", "expired"),
    # Azure OpenAI: the deployment is named after its model
    "azure": (FakeAzureOpenAIServer, "gpt-4o-mini", "llmx_openai._azure", "expired"),
    "anthropic": (FakeAnthropicServer, "claude-sonnet-4-5", "llmx_anthropic._batch", ""),
    "gemini": (FakeGeminiServer, "gemini-2.5-flash", "llmx_gemini._batch", "BATCH_STATE_EXPIRED"),
}


def write(path: Path, ids: list[str]) -> None:
    path.write_text("".join(json.dumps({"id": i, "prompt": f"prompt of {i}"}) + "\n" for i in ids))


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_once(out: list[dict[str, Any]], ids: list[str]) -> None:
    counts = Counter(r["id"] for r in out)
    assert [i for i, n in counts.items() if n > 1] == []
    assert set(counts) == set(ids)
    for row in out:
        if row["response"] is not None:
            assert row["response"]["text"] == f"prompt of {row['id']}"


def config(vendor: str, server: Any) -> dict[str, Any]:
    table = {"type": vendor, "base_url": server.base_url, "api_key": "test-key"}
    return {"providers": {"v": table}, "retry": {"attempts": 1}}


@pytest.fixture(params=list(VENDORS))
def vendor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_partial_errors_typed_like_the_normal_path(vendor: str, tmp_path: Path) -> None:
    fake, model, _, _ = VENDORS[vendor]
    ids = ["a", "b c", "d/é", "e", "x" * 80]  # ids a vendor would refuse are mapped
    write(tmp_path / "in.jsonl", ids)
    async with fake() as server:
        normal = None  # the error a normal call gets for the same failure
        async with llmx.Client(config(vendor, server)) as client:
            server.enqueue(ErrorReply(400, message="bad request"))
            try:
                await client.complete(model=f"v/{model}", prompt="x")
            except llmx.BadRequestError as err:
                normal = err
            # the second request of the batch fails as the normal call did
            server.enqueue(Reply("prompt of a"), ErrorReply(400, message="bad b c"))
            lines: list[str] = []
            report = await client.provider_batch(
                tmp_path / "in.jsonl", model=f"v/{model}", poll_interval=0.001, echo=lines.append
            )
            stats = {(m.instance, m.model): m for m in client.stats().models}
        assert server.errors == []
    assert normal is not None
    assert (report.succeeded, report.failed, report.waiting) == (4, 1, 0)
    assert server.batch_creates == 1
    out = rows(tmp_path / "in.results.jsonl")
    check_once(out, ids)
    assert [r["id"] for r in out] == ids
    error = next(r["error"] for r in out if r["id"] == "b c")
    assert error["type"] == type(normal).__name__
    assert (error["status"], error["message"], error["provider"]) == (400, "bad b c", "v")
    good = next(r["response"] for r in out if r["id"] == "a")
    assert good["provider"] == "v"
    assert good["cost"] is not None
    assert good["batch"] == {"id": report.batches[0], "price": "batch"}  # the facts have them
    assert any("submitted batch" in line for line in lines)
    counted = stats[("v", model)]  # the normal call, then the batch's five results
    assert (counted.requests, counted.successes) == (1 + 5, 4)
    assert counted.errors == {type(normal).__name__: 1 + 1}
    assert counted.cost > 0
    assert not state_path(tmp_path / "in.results.jsonl").exists()


async def test_expired_requests(vendor: str, tmp_path: Path) -> None:
    fake, model, _, expired_state = VENDORS[vendor]
    ids = [f"r{i}" for i in range(6)]
    write(tmp_path / "in.jsonl", ids)
    async with fake() as server:
        if expired_state:
            server.batch_lifecycle = (*server.batch_lifecycle[:-1], expired_state)
        else:
            server.batch_expire = True
        server.batch_answer_before_end = 2
        async with llmx.Client(config(vendor, server)) as client:
            report = await client.provider_batch(
                tmp_path / "in.jsonl", model=f"v/{model}", poll_interval=0.001
            )
    assert (report.succeeded, report.failed) == (2, 4)
    out = rows(tmp_path / "in.results.jsonl")
    check_once(out, ids)
    for row in out[2:]:
        assert (row["error"]["type"], row["error"]["code"], row["error"]["retryable"]) == (
            "ProviderTimeoutError",
            "batch_expired",
            True,
        )


async def test_cancel_then_resume_writes_cancelled_errors(vendor: str, tmp_path: Path) -> None:
    fake, model, _, _ = VENDORS[vendor]
    ids = [f"r{i}" for i in range(4)]
    write(tmp_path / "in.jsonl", ids)
    async with fake() as server:
        server.batch_lifecycle = (
            server.batch_lifecycle[0],
            *[server.batch_lifecycle[1]] * 50,
            server.batch_lifecycle[-1],
        )
        async with llmx.Client(config(vendor, server)) as client:
            first = await client.provider_batch(
                tmp_path / "in.jsonl", model=f"v/{model}", poll_interval=0.001, timeout=0.05
            )
            assert first.waiting == 4
            assert state_path(tmp_path / "in.results.jsonl").exists()
            second = await client.provider_batch(
                tmp_path / "in.jsonl", model=f"v/{model}", poll_interval=0.001, cancel=True
            )
    assert server.batch_creates == 1
    assert second.failed == 4
    out = rows(tmp_path / "in.results.jsonl")
    check_once(out, ids)
    assert {(r["error"]["type"], r["error"]["code"]) for r in out} == {
        ("ProviderError", "batch_canceled")
    }


async def test_split_to_the_vendor_limits(
    vendor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, model, module, _ = VENDORS[vendor]
    ids = [f"r{i}" for i in range(23)]
    write(tmp_path / "in.jsonl", ids)
    monkeypatch.setattr(f"{module}.MAX_REQUESTS", 10)
    async with fake() as server:
        async with llmx.Client(config(vendor, server)) as client:
            report = await client.provider_batch(
                tmp_path / "in.jsonl", model=f"v/{model}", poll_interval=0.001
            )
        assert [len(b.items) for b in server.batches.values()] == [10, 10, 3]
        check_once(rows(tmp_path / "in.results.jsonl"), ids)
        assert len(report.batches) == 3

        # and by size: each batch stays within the byte limit
        sizes = [
            sum(len(json.dumps(body)) for _, body in batch.items)
            for batch in server.batches.values()
        ]
    monkeypatch.setattr(f"{module}.MAX_REQUESTS", 1000)
    monkeypatch.setattr(f"{module}.MAX_BYTES", max(sizes) + 500)
    (tmp_path / "in.results.jsonl").unlink()
    async with fake() as server:
        async with llmx.Client(config(vendor, server)) as client:
            report = await client.provider_batch(
                tmp_path / "in.jsonl", model=f"v/{model}", poll_interval=0.001
            )
        assert len(server.batches) >= 2
        assert sum(len(b.items) for b in server.batches.values()) == 23
    check_once(rows(tmp_path / "in.results.jsonl"), ids)


async def test_a_create_whose_answer_was_lost_is_found_not_repeated(
    vendor: str, tmp_path: Path
) -> None:
    """The process dies after the vendor created the batch but before its id was recorded
    (here: the task is cancelled while the fake holds the create's answer)."""
    fake, model, _, _ = VENDORS[vendor]
    ids = [f"r{i}" for i in range(5)]
    write(tmp_path / "in.jsonl", ids)
    async with fake() as server:
        server.batch_hold["create"] = 30.0
        async with llmx.Client(config(vendor, server)) as client:
            task = asyncio.create_task(
                client.provider_batch(
                    tmp_path / "in.jsonl", model=f"v/{model}", poll_interval=0.001
                )
            )
            while server.batch_creates == 0:  # noqa: ASYNC110 - the fake is polled, it signals nothing
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        state = json.loads(state_path(tmp_path / "in.results.jsonl").read_text())
        assert [c["status"] for c in state["chunks"]] == ["submitting"]
        server.batch_hold.clear()
        lines: list[str] = []
        async with llmx.Client(config(vendor, server)) as client:
            report = await client.provider_batch(
                tmp_path / "in.jsonl", model=f"v/{model}", poll_interval=0.001, echo=lines.append
            )
    assert server.batch_creates == 1
    assert report.succeeded == 5
    assert any("not creating it again" in line for line in lines)
    check_once(rows(tmp_path / "in.results.jsonl"), ids)


async def test_a_provider_without_a_batch_api_is_refused_before_sending(tmp_path: Path) -> None:
    write(tmp_path / "in.jsonl", ["a"])
    async with scripted_client(["never"]) as client:
        with pytest.raises(llmx.UnsupportedFeatureError) as caught:
            await client.provider_batch(tmp_path / "in.jsonl", model="scripted/m")
    err = caught.value
    assert (err.provider, err.model, err.feature) == ("scripted", "m", "provider_batch")
    assert "has no batch API" in str(err)
    assert not (tmp_path / "in.results.jsonl").exists()


def test_batch_prices_when_the_facts_have_them() -> None:
    @attrs.frozen
    class Priced(llmx.ModelInfo):
        batch_input_price: float | None = None
        batch_output_price: float | None = None

    usage = llmx.Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert batch_cost(Priced("m", input_price=2, output_price=8), usage) == (10.0, "normal")
    assert batch_cost(
        Priced("m", input_price=2, output_price=8, batch_input_price=1, batch_output_price=4),
        usage,
    ) == (5.0, "batch")
    assert batch_cost(None, usage) == (None, "normal")


# -- properties ----------------------------------------------------------------------------


@given(st.lists(st.text(min_size=1, max_size=100), min_size=1, max_size=30, unique=True))
def test_vendor_ids_are_safe_for_every_vendor_and_distinct(ids: list[str]) -> None:
    mapped = [vendor_id(i) for i in ids]
    assert len(set(mapped)) == len(mapped)
    for original, sent in zip(ids, mapped, strict=True):
        assert 1 <= len(sent) <= 64
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in sent)
        assert vendor_id(original) == sent  # stable across runs


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@given(
    st.lists(
        st.builds(
            Chunk,
            key=names,
            instance=names,
            model=names,
            ids=st.lists(names, max_size=5),
            status=st.sampled_from(["new", "submitting", "submitted", "written"]),
            since=st.none() | st.floats(0, 2e9),
            checkpoint=st.dictionaries(names, names, max_size=2),
            job=st.none() | st.builds(BatchJob, names, st.dictionaries(names, names, max_size=2)),
            vendor_state=st.none() | names,
        ),
        max_size=4,
    )
)
def test_the_state_file_round_trips(chunks: list[Chunk]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        state = StateFile(Path(directory) / "s.json")
        state.chunks = chunks
        state.save()
        again = StateFile(state.path)
        again.load()
    assert again.chunks == chunks


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    vendor=st.sampled_from(list(VENDORS)),
    row=st.fixed_dictionaries(
        {"custom_id": st.just("a")},
        optional={
            "response": json_values,
            "error": json_values,
            "result": json_values,
            "metadata": json_values | st.fixed_dictionaries({"key": st.just("a") | json_values}),
        },
    ),
)
def test_any_result_line_is_an_answer_or_a_typed_error(vendor: str, row: dict[str, Any]) -> None:
    """Whatever a vendor's result line holds, reading it gives a result or raises an llmx
    error, never anything else (the batch goes on with the other lines)."""
    from llmx_anthropic._batch import AnthropicBatchMixin
    from llmx_gemini._batch import GeminiBatchMixin

    from llmx_openai._batch import OpenAIBatchMixin

    request = llmx.Request("m", [llmx.Message("user", "hi")])
    line = json.dumps(row).encode()
    provider = _bare(vendor)
    try:
        if vendor in ("openai", "azure"):
            result = OpenAIBatchMixin._result(provider, line, {"a": request})
        elif vendor == "anthropic":
            result = AnthropicBatchMixin._result(provider, line, {"a": request})
        else:
            op = {
                "name": "batches/x",
                "metadata": {"state": "BATCH_STATE_SUCCEEDED"},
                "response": {"inlinedResponses": {"inlinedResponses": [row.get("result"), row]}},
            }
            results = list(GeminiBatchMixin._results_of(provider, op, {"a": request}))
            assert all(r.custom_id == "a" for r in results)
            assert all(r.error is None or isinstance(r.error, llmx.LlmxError) for r in results)
            return
    except llmx.LlmxError:
        return
    assert result is None or result.custom_id == "a"
    if result is not None and result.error is not None:
        assert isinstance(result.error, llmx.LlmxError)


def _bare(vendor: str) -> Any:
    from unittest.mock import MagicMock

    from llmx.http import Endpoint

    ctx = MagicMock()
    ctx.instance = "v"
    ctx.config.headers = {}
    ctx.config.allow_insecure_http = False
    ctx.config.max_response_bytes = 2**20
    ctx.config.max_event_bytes = 2**20
    ctx.config.timeout = 1.0
    provider = MagicMock()
    provider._http = Endpoint(ctx, base_url="https://api.example.com")
    return provider


async def test_a_lost_create_answer_and_failing_polls_are_retried_without_a_second_batch(
    vendor: str, tmp_path: Path
) -> None:
    """The vendor made the batch but its answer was a 500; then two polls answer 503. The
    create is retried only after looking for the batch, the polls simply again."""
    fake, model, _, _ = VENDORS[vendor]
    ids = [f"r{i}" for i in range(3)]
    write(tmp_path / "in.jsonl", ids)
    async with fake() as server:
        server.batch_lose_creates = 1
        server.batch_poll_errors = 2
        lines: list[str] = []
        async with llmx.Client(config(vendor, server)) as client:
            report = await client.provider_batch(
                tmp_path / "in.jsonl", model=f"v/{model}", poll_interval=0.001, echo=lines.append
            )
    assert server.batch_creates == 1
    assert report.succeeded == 3
    assert sum("trying again" in line for line in lines) == 1
    assert sum("polling again" in line for line in lines) == 2
    assert any("not creating it again" in line for line in lines)
    check_once(rows(tmp_path / "in.results.jsonl"), ids)


async def test_the_fakes_answer_in_the_vendors_published_shapes(tmp_path: Path) -> None:
    """The fakes' batch objects and result lines match the vendors' schemas (so a
    provider tested against them is tested against what the vendor sends)."""
    import aiohttp

    from llmx.testing.openapi import vendor_validator

    write(tmp_path / "in.jsonl", ["a", "b"])

    async with FakeOpenAIServer() as server, aiohttp.ClientSession() as http:
        server.enqueue(Reply("prompt of a"), ErrorReply(429))
        async with llmx.Client(config("openai", server)) as client:
            await client.provider_batch(
                tmp_path / "in.jsonl", tmp_path / "o1.jsonl", model="v/gpt-4o-mini", poll_interval=0
            )
        spec = vendor_validator("openai", "official")
        auth = {"authorization": "Bearer test-key"}
        async with http.get(f"{server.base_url}/batches/batch_fake000001", headers=auth) as r:
            batch = await r.json()
        spec.check_schema("Batch", batch)
        for field in ("output_file_id", "error_file_id"):
            url = f"{server.base_url}/files/{batch[field]}/content"
            async with http.get(url, headers=auth) as r:
                for line in (await r.read()).splitlines():
                    row = json.loads(line)
                    if row["response"] is not None and row["response"]["status_code"] == 200:
                        spec.check_schema("CreateChatCompletionResponse", row["response"]["body"])

    async with FakeAnthropicServer() as server, aiohttp.ClientSession() as http:
        server.enqueue(Reply("prompt of a"), ErrorReply(400))
        async with llmx.Client(config("anthropic", server)) as client:
            await client.provider_batch(
                tmp_path / "in.jsonl",
                tmp_path / "o2.jsonl",
                model="v/claude-sonnet-4-5",
                poll_interval=0,
            )
        spec = vendor_validator("anthropic", "official")
        auth = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
        async with http.get(f"{server.base_url}/v1/messages/batches", headers=auth) as r:
            spec.check_schema("ListResponse_MessageBatch_", await r.json())
        url = f"{server.base_url}/v1/messages/batches/msgbatch_fake000001/results"
        async with http.get(url, headers=auth) as r:
            for line in (await r.read()).splitlines():
                spec.check_schema("MessageBatchIndividualResponse", json.loads(line))

    async with FakeGeminiServer() as server, aiohttp.ClientSession() as http:
        server.enqueue(Reply("prompt of a"), ErrorReply(500))
        async with llmx.Client(config("gemini", server)) as client:
            await client.provider_batch(
                tmp_path / "in.jsonl",
                tmp_path / "o3.jsonl",
                model="v/gemini-2.5-flash",
                poll_interval=0,
            )
        spec = vendor_validator("gemini", "official")
        auth = {"x-goog-api-key": "test-key"}
        async with http.get(f"{server.base_url}/batches/fake000001", headers=auth) as r:
            op = await r.json()
        spec.check_schema("Operation", op)
        meta = {k: v for k, v in op["metadata"].items() if k != "@type"}
        # "Required." in the discovery document is about creates: an operation's metadata
        # does not repeat the inline requests.
        problems = spec.errors("GenerateContentBatch", meta)
        assert problems == ["$: 'inputConfig' is a required property"], problems
        output = {k: v for k, v in op["response"].items() if k != "@type"}
        spec.check_schema("GenerateContentBatchOutput", output)


async def test_a_batch_of_more_than_a_megabyte(vendor: str, tmp_path: Path) -> None:
    """Uploads and creates are large (the vendors take 200-256 MB; the fakes 300 MB)."""
    fake, model, _, _ = VENDORS[vendor]
    ids = [f"r{i}" for i in range(1500)]
    (tmp_path / "in.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "prompt": f"prompt of {i}", "system": "s" * 800}) + "\n"
            for i in ids
        )
    )
    async with fake() as server:
        async with llmx.Client(config(vendor, server)) as client:
            report = await client.provider_batch(
                tmp_path / "in.jsonl", model=f"v/{model}", poll_interval=0.001
            )
        sent = sum(len(r.body) for r in server.requests if r.method == "POST")
    assert sent > 2**20
    assert (report.succeeded, report.failed) == (1500, 0)
    check_once(rows(tmp_path / "in.results.jsonl"), ids)


async def test_lines_for_two_providers_make_a_batch_each(tmp_path: Path) -> None:
    lines = [
        {"id": "o1", "prompt": "prompt of o1", "model": "oa/gpt-4o-mini"},
        {"id": "a1", "prompt": "prompt of a1", "model": "an/claude-sonnet-4-5"},
        {"id": "o2", "prompt": "prompt of o2", "model": "oa/gpt-4o-mini"},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    async with FakeOpenAIServer() as openai, FakeAnthropicServer() as anthropic:
        cfg = {
            "providers": {
                "oa": {"type": "openai", "base_url": openai.base_url, "api_key": "test-key"},
                "an": {"type": "anthropic", "base_url": anthropic.base_url, "api_key": "test-key"},
            }
        }
        async with llmx.Client(cfg) as client:
            report = await client.provider_batch(tmp_path / "in.jsonl", poll_interval=0.001)
    assert (openai.batch_creates, anthropic.batch_creates) == (1, 1)
    assert [len(b.items) for b in openai.batches.values()] == [2]
    assert report.succeeded == 3
    out = rows(tmp_path / "in.results.jsonl")
    check_once(out, ["o1", "a1", "o2"])
    assert {r["id"]: r["response"]["provider"] for r in out} == {"o1": "oa", "a1": "an", "o2": "oa"}


async def test_a_line_larger_than_a_whole_batch_is_an_error_the_others_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("llmx_openai._batch.MAX_BYTES", 2000)
    lines = [
        {"id": "small", "prompt": "prompt of small"},
        {"id": "huge", "prompt": "x" * 5000},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    async with FakeOpenAIServer() as server, llmx.Client(config("openai", server)) as client:
        report = await client.provider_batch(
            tmp_path / "in.jsonl", model="v/gpt-4o-mini", poll_interval=0.001
        )
    assert (report.succeeded, report.failed) == (1, 1)
    out = {r["id"]: r for r in rows(tmp_path / "in.results.jsonl")}
    assert out["small"]["response"]["text"] == "prompt of small"
    assert out["huge"]["error"]["type"] == "BatchError"
    assert "more than one batch of v takes (2,000 bytes)" in out["huge"]["error"]["message"]
    assert [len(b.items) for b in server.batches.values()] == [1]
