"""``llmx batch --provider-batch``: the same JSONL through the vendors' batch APIs.

OpenAI's Batch API, Anthropic's Message Batches and Gemini's batch mode answer within
24 hours for about half the price. This module takes the input ``llmx batch`` takes
(:func:`llmx._batch.read_input`, the same ids and models), turns each line into the
provider's normal request body (:meth:`~llmx.plugin.BatchProvider.batch_line`), splits
the lines to each vendor's limits, submits, waits, and writes the same results file
(:func:`llmx._batch.success_record` / :func:`~llmx._batch.error_record`), every id exactly
once.

**Never paying twice.** Every step is recorded in a state file next to the results file
(``RESULTS.batch-state.json``, rewritten atomically) *before* the step it guards:

1. a chunk's ids, instance and model, and its key (unique to the chunk), before anything
   is uploaded;
2. what an upload made (the vendor's file id), as soon as it exists, so a resumed run
   does not upload again;
3. ``submitting`` with the time, before the create is sent: a run that stopped between
   sending the create and recording its answer asks the provider for the batch that
   create made (:meth:`~llmx.plugin.BatchProvider.find_batch`: by the key in the batch's
   metadata or display name where the API keeps one) and adopts it instead of creating
   another;
4. the batch id, as soon as the create answers; from then on a run only polls it;
5. ``written`` once every result of the chunk is in the results file (which is, as for
   ``llmx batch``, its own journal: a run stopped while writing skips the ids already
   written when it reads the results again).

Results are priced at the model's batch prices when the model facts have them, else at
its normal prices (said in the summary and in each record's ``batch.price``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from llmx._batch import (
    BatchError,
    BatchItem,
    BatchOptions,
    ClientFactory,
    ResultWriter,
    _fsync_dir,
    error_record,
    load_results,
    rewrite_results,
    success_record,
)
from llmx._batchapi import BatchJob, BatchProvider, BatchResult, BatchStatus
from llmx._errors import (
    BadRequestError,
    LlmxError,
    MalformedResponseError,
    ProviderError,
    ProviderTimeoutError,
    UnsupportedFeatureError,
)

if TYPE_CHECKING:
    from llmx._config import Config
    from llmx._engine.resolve import Route
    from llmx._pool import Instance, ProviderPool
    from llmx._stats import StatsRecorder
    from llmx._types import ModelInfo, Request, Response, Usage

FEATURE = "provider_batch"
"""The feature name in :class:`~llmx.UnsupportedFeatureError` and the conformance kit."""

STATE_VERSION = 1
SUBMIT_ATTEMPTS = 4
"""Attempts to submit a chunk when the vendor answers with a retryable error."""
EXIT_STILL_RUNNING = 75
"""Exit status when ``--timeout`` passed with batches still running (``EX_TEMPFAIL``)."""

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def state_path(output: Path) -> Path:
    """Where the state of the batches writing ``output`` is kept (next to it)."""
    return output.with_name(f"{output.name}.batch-state.json")


def vendor_id(item_id: str) -> str:
    """The ``custom_id`` sent for ``item_id``: itself when every vendor accepts it
    (``[A-Za-z0-9_-]{1,64}``, Anthropic's rule), else ``h`` and a SHA-256 prefix."""
    if _SAFE_ID.fullmatch(item_id):
        return item_id
    return "h" + hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]


# -- the state file ---------------------------------------------------------------------------


@attrs.define
class Chunk:
    """One vendor batch of this run, as the state file records it."""

    key: str
    instance: str
    model: str
    ids: list[str]
    status: str = "new"  # new -> submitting -> submitted -> written
    since: float | None = None
    checkpoint: dict[str, str] = attrs.field(factory=dict)
    job: BatchJob | None = None
    vendor_state: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The chunk as the state file stores it."""
        out = attrs.asdict(self, recurse=False)
        out["job"] = (
            None if self.job is None else {"id": self.job.id, "files": dict(self.job.files)}
        )
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Chunk:
        """A chunk read back from the state file."""
        job = data.get("job")
        fields = dict(data)
        fields["job"] = None if job is None else BatchJob(job["id"], dict(job.get("files", {})))
        return cls(**fields)


class StateFile:
    """The chunks of a provider batch run, saved atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.chunks: list[Chunk] = []

    def load(self) -> None:
        """Read the chunks recorded by earlier runs (none if the file does not exist)."""
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # a save cut short
            with contextlib.suppress(OSError):
                stale.unlink()
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as err:
            msg = (
                f"cannot read the batch state file {str(self.path)!r} ({err}): it records the "
                "batches already submitted; fix or remove it (removing it may submit them again)"
            )
            raise BatchError(msg) from err
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            msg = f"{str(self.path)!r} is not a batch state file of this llmx version"
            raise BatchError(msg)
        try:
            self.chunks = [Chunk.from_json(c) for c in data["chunks"]]
        except (KeyError, TypeError) as err:
            msg = f"the batch state file {str(self.path)!r} is damaged ({err!r})"
            raise BatchError(msg) from err

    def save(self) -> None:
        """Write the state (a temporary file, fsync, rename, fsync of the directory)."""
        data = {"version": STATE_VERSION, "chunks": [c.to_json() for c in self.chunks]}
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(data, out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.path.parent)


# -- the run ---------------------------------------------------------------------------------


@attrs.frozen
class ProviderBatchReport:
    """What a provider batch run did: results written now (ok, failed), ids already done
    before it, ids still waiting on running batches, the batches by vendor id, the cost
    and how it was priced (``"batch"``, ``"normal"`` or ``"mixed"``)."""

    succeeded: int
    failed: int
    skipped: int
    waiting: int
    batches: tuple[str, ...]
    cost: float
    priced_as: str
    stopped: bool = False


@attrs.frozen
class Backend:
    """What a run needs of the client: its routes, its provider instances, its config
    (the client passes its own; the batch module does not import the client)."""

    route: Callable[[str], Route]
    pool: ProviderPool
    config: Config
    stats: StatsRecorder | None = None
    """Where each result is counted (``client.stats()``), if anywhere."""


@attrs.define
class _Target:
    instance: Instance
    provider: BatchProvider
    info: ModelInfo | None


def _refusal(inst: Instance, model: str) -> UnsupportedFeatureError:
    msg = (
        f"provider instance {inst.name!r} (type {inst.config.type!r}) has no batch API in "
        f"llmx, so {inst.name}/{model} cannot run with --provider-batch; run without "
        "--provider-batch (each request then goes through the normal pipeline), or choose "
        "a model of a provider with one (openai, anthropic, gemini)"
    )
    return UnsupportedFeatureError(msg, provider=inst.name, model=model, feature=FEATURE)


def batch_cost(info: ModelInfo | None, usage: Usage) -> tuple[float | None, str]:
    """The cost of ``usage`` at the model's batch prices, if its facts have them (fields
    ``batch_input_price``/``batch_output_price``, from the model facts), else at its
    normal prices; and which (``"batch"`` or ``"normal"``)."""
    if info is None:
        return None, "normal"
    batch_in = getattr(info, "batch_input_price", None)  # not every ModelInfo has them
    batch_out = getattr(info, "batch_output_price", None)
    if batch_in is not None and batch_out is not None:
        return attrs.evolve(info, input_price=batch_in, output_price=batch_out).cost(usage), "batch"
    return info.cost(usage), "normal"


class ProviderBatchRun:
    """One run of ``--provider-batch`` over resolved ``items`` into ``output``.

    ``echo`` prints a progress line to standard error. Call :meth:`run` in the client's
    event loop, with the client open.
    """

    def __init__(
        self,
        backend: Backend,
        items: Sequence[BatchItem],
        output: Path,
        *,
        poll_interval: float = 10.0,
        max_poll_interval: float | None = None,
        timeout: float | None = None,
        cancel: bool = False,
        echo: Callable[[str], None] = lambda line: None,
        progress: bool = True,
    ) -> None:
        self.backend = backend
        self.items = list(items)
        self.output = output
        self.poll_interval = poll_interval
        self.max_poll_interval = (
            max_poll_interval
            if max_poll_interval is not None
            else max(min(30 * poll_interval, 300.0), poll_interval)
        )
        self.timeout = timeout
        self.cancel = cancel
        self.echo = echo
        self.show_progress = progress
        self.done: set[str] = set()
        """Ids with a result in the results file (read before the run, added as written)."""
        self.state = StateFile(state_path(output))
        self.stop_event = asyncio.Event()
        self.stopped_by: int | None = None
        self._targets: dict[tuple[str, str], _Target] = {}
        self._by_id = {item.id: item for item in self.items}
        self.succeeded = 0
        self.failed = 0
        self.cost = 0.0
        self.priced: Counter[str] = Counter()

    # -- planning ------------------------------------------------------------------

    def _target(self, item: BatchItem) -> tuple[str, str]:
        """(instance, provider model) of ``item``: its route's first candidate."""
        candidate = self.backend.route(item.request.model).candidates[0]
        key = (candidate.instance, candidate.model)
        if key not in self._targets:
            inst = self.backend.pool.get(candidate.instance)
            provider = inst.open()
            if not isinstance(provider, BatchProvider):
                raise _refusal(inst, candidate.model)
            info = candidate.info or inst.model_info(candidate.model)
            self._targets[key] = _Target(inst, provider, info)
        return key

    def plan(self, pending: Sequence[BatchItem]) -> list[tuple[BatchItem, BaseException]]:
        """Check every provider before anything is sent (one without a batch API is
        refused: :class:`~llmx.UnsupportedFeatureError`), load the state, and make new
        chunks of the pending ids no recorded chunk covers. Returns the items refused
        one by one (a capability the model lacks), to be written as errors."""
        from llmx._engine.fallback import check_capabilities

        keys = {item.id: self._target(item) for item in pending}  # refuses before any I/O
        self.state.load()
        covered = {i for c in self.state.chunks if c.status != "written" for i in c.ids}
        refused: list[tuple[BatchItem, BaseException]] = []
        groups: dict[tuple[str, str], list[tuple[str, int]]] = {}  # ids and line sizes
        for item in pending:
            if item.id in covered:
                continue
            instance, model = keys[item.id]
            target = self._targets[(instance, model)]
            request = item.request.with_model(model)
            try:
                check_capabilities(request, target.instance, target.info)
                line = target.provider.batch_line(vendor_id(item.id), request)
            except (UnsupportedFeatureError, ProviderError) as err:
                refused.append((item, err))
                continue
            # Only the size is kept: the lines are encoded again when their chunk is
            # submitted, so a large input is never held in memory whole.
            groups.setdefault((instance, model), []).append((item.id, len(line)))
        run = uuid.uuid4().hex[:12]
        for (instance, model), lines in groups.items():
            limits = self._targets[(instance, model)].provider.batch_limits(model)
            chunk_ids: list[str] = []
            size = limits.base_overhead
            for item_id, line_size in lines:
                grow = line_size + limits.line_overhead
                if chunk_ids and (
                    len(chunk_ids) >= limits.max_requests or size + grow > limits.max_bytes
                ):
                    self._new_chunk(run, instance, model, chunk_ids)
                    chunk_ids, size = [], limits.base_overhead
                if limits.base_overhead + grow > limits.max_bytes:
                    msg = (
                        f"request {item_id!r} is {line_size:,} bytes, more than one batch of "
                        f"{instance} takes ({limits.max_bytes:,} bytes)"
                    )
                    refused.append((self._by_id[item_id], BatchError(msg)))
                    continue
                chunk_ids.append(item_id)
                size += grow
            if chunk_ids:
                self._new_chunk(run, instance, model, chunk_ids)
        self.state.save()
        return refused

    def _new_chunk(self, run: str, instance: str, model: str, ids: list[str]) -> None:
        key = f"llmx-{run}-{len(self.state.chunks)}"
        self.state.chunks.append(Chunk(key, instance, model, list(ids)))

    def _chunk_target(self, chunk: Chunk) -> _Target:
        key = (chunk.instance, chunk.model)
        target = self._targets.get(key)
        if target is None:
            inst = self.backend.pool.get(chunk.instance)
            provider = inst.open()
            if not isinstance(provider, BatchProvider):
                raise _refusal(inst, chunk.model)
            target = self._targets[key] = _Target(inst, provider, inst.model_info(chunk.model))
        return target

    def _request(self, item_id: str, model: str) -> Request | None:
        item = self._by_id.get(item_id)
        return None if item is None else item.request.with_model(model)

    # -- submitting --------------------------------------------------------------------

    async def submit(self, chunk: Chunk) -> None:
        """Submit ``chunk`` once, retrying what may pass (a 429, a 5xx, a timeout): each
        attempt after a failed create first looks for the batch that create may have made
        (:meth:`_submit_once`), so a create that timed out is never repeated blindly."""
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                await self._submit_once(chunk)
                return
            except ProviderError as err:
                if not err.retryable or attempt == SUBMIT_ATTEMPTS or self.stop_event.is_set():
                    raise
                wait = err.retry_after or min(self.poll_interval * 2.0**attempt, 60.0)
                self.echo(
                    f"llmx: submitting to {chunk.instance} failed ({type(err).__name__}: "
                    f"{err.message}); trying again in {wait:g} s"
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), wait)

    async def _submit_once(self, chunk: Chunk) -> None:
        """Adopt the batch an interrupted create made, else create."""
        target = self._chunk_target(chunk)
        provider = target.provider
        if chunk.status == "submitting" and chunk.since is not None:
            known = {c.job.id for c in self.state.chunks if c.job is not None}
            found = await provider.find_batch(
                chunk.model, key=chunk.key, since=chunk.since, count=len(chunk.ids)
            )
            if found is not None and found.id not in known:
                chunk.job = found
                chunk.status = "submitted"
                self.state.save()
                self.echo(
                    f"llmx: found batch {found.id}, made by an earlier create whose answer "
                    f"was lost ({len(chunk.ids)} requests); not creating it again"
                )
                return
        lines = []
        for item_id in chunk.ids:
            request = self._request(item_id, chunk.model)
            if request is None:
                msg = (
                    f"id {item_id!r} of the recorded batch chunk {chunk.key} is not in the input "
                    f"any more; run with the input the batch was started with, or remove "
                    f"{str(self.state.path)!r} to start over"
                )
                raise BatchError(msg)
            lines.append(provider.batch_line(vendor_id(item_id), request))

        def save(ids: Mapping[str, str]) -> None:
            chunk.checkpoint.update(ids)
            self.state.save()

        chunk.status = "submitting"
        chunk.since = time.time()
        self.state.save()
        job = await provider.submit_batch(
            chunk.model, lines, key=chunk.key, checkpoint=dict(chunk.checkpoint), save=save
        )
        chunk.job = job
        chunk.status = "submitted"
        self.state.save()
        self.echo(
            f"llmx: submitted batch {job.id} to {chunk.instance} ({len(chunk.ids)} requests, "
            f"{chunk.model})"
        )

    # -- waiting -----------------------------------------------------------------------

    async def run(self, writer: ResultWriter) -> ProviderBatchReport:
        """Submit what is not submitted, poll until every batch ended (or the timeout, or
        :meth:`stop`), write each ended batch's results; the report."""
        for chunk in self.state.chunks:
            if chunk.status in ("new", "submitting"):
                if self.stop_event.is_set():
                    break
                await self.submit(chunk)
        if self.cancel:
            for chunk in self._open_chunks():
                assert chunk.job is not None
                status = await self._chunk_target(chunk).provider.cancel_batch(chunk.job)
                self.echo(f"llmx: cancelling batch {chunk.job.id}: {status.vendor_state}")
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        interval = self.poll_interval
        shown: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {}
        while not self.stop_event.is_set():
            open_chunks = self._open_chunks()
            if not open_chunks:
                break
            changed = False
            for chunk in open_chunks:
                assert chunk.job is not None
                target = self._chunk_target(chunk)
                try:
                    status = await target.provider.poll_batch(chunk.job)
                except ProviderError as err:
                    if not err.retryable:
                        raise
                    # A 429, a 5xx or a timeout while polling: the batch runs on; so do we.
                    self.echo(
                        f"llmx: polling batch {chunk.job.id} failed ({type(err).__name__}: "
                        f"{err.message}); polling again"
                    )
                    continue
                view = (status.vendor_state, tuple(sorted(status.counts.items())))
                if shown.get(chunk.key) != view:
                    shown[chunk.key] = view
                    changed = True
                    if self.show_progress:
                        self._progress(chunk, status)
                if chunk.vendor_state != status.vendor_state:
                    chunk.vendor_state = status.vendor_state
                    self.state.save()
                if status.ended:
                    await self._write_results(chunk, target, status, writer)
                    if self.stop_event.is_set():
                        break
            if not self._open_chunks() or self.stop_event.is_set():
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            interval = (
                self.poll_interval if changed else min(interval * 1.5, self.max_poll_interval)
            )
            wait = (
                interval if deadline is None else min(interval, max(deadline - time.monotonic(), 0))
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), wait)
        waiting = sum(len(c.ids) for c in self.state.chunks if c.status != "written")
        priced = "mixed" if len(self.priced) > 1 else next(iter(self.priced), "normal")
        return ProviderBatchReport(
            self.succeeded,
            self.failed,
            0,
            waiting,
            tuple(c.job.id for c in self.state.chunks if c.job is not None),
            self.cost,
            priced,
            self.stop_event.is_set(),
        )

    def stop(self, signum: int) -> None:
        """Stop waiting (from a signal handler); the batches go on at the vendor."""
        if self.stopped_by is None:
            self.stopped_by = signum
        self.stop_event.set()

    def _open_chunks(self) -> list[Chunk]:
        return [c for c in self.state.chunks if c.status == "submitted"]

    def _progress(self, chunk: Chunk, status: BatchStatus) -> None:
        assert chunk.job is not None
        counts = ", ".join(f"{k} {v}" for k, v in status.counts.items()) or "no counts yet"
        self.echo(
            f"llmx: batch {chunk.job.id} ({chunk.instance}/{chunk.model}, "
            f"{len(chunk.ids)} requests): {status.vendor_state} ({counts})"
        )

    async def _write_results(
        self, chunk: Chunk, target: _Target, status: BatchStatus, writer: ResultWriter
    ) -> None:
        assert chunk.job is not None
        wanted: dict[str, str | None] = {vendor_id(i): i for i in chunk.ids}
        requests: dict[str, Request] = {}
        for vid, item_id in wanted.items():
            request = self._request(item_id or "", chunk.model)
            if request is not None:
                requests[vid] = request
        async for result in target.provider.batch_results(chunk.job, requests):
            item_id = wanted.pop(result.custom_id, None)
            if item_id is None or item_id in self.done or item_id not in self._by_id:
                continue
            record = self._record(chunk, target, item_id, result)
            self.write(writer, record, chunk.instance, chunk.model)
            if self.stop_event.is_set():
                return
        for item_id in wanted.values():  # no result for these: the batch's own end says why
            if item_id is None or item_id in self.done or item_id not in self._by_id:
                continue
            err = _missing_error(chunk, status)
            self.write(writer, error_record(self._by_id[item_id], err), chunk.instance, chunk.model)
        writer.sync()
        chunk.status = "written"
        self.state.save()

    def _record(
        self, chunk: Chunk, target: _Target, item_id: str, result: BatchResult
    ) -> dict[str, Any]:
        item = self._by_id[item_id]
        assert chunk.job is not None
        if result.response is not None:
            response: Response = result.response
            cost, basis = batch_cost(target.info, response.usage)
            response = attrs.evolve(response, provider=chunk.instance, cost=cost)
            record = success_record(item, response)
            record["response"]["batch"] = {"id": chunk.job.id, "price": basis}
            if cost is not None:
                self.cost += cost
                self.priced[basis] += 1
            return record
        err = result.error
        if err is None or result.status in ("canceled", "expired"):
            err = _missing_error(chunk, BatchStatus("ended", result.status))
        return error_record(item, err)

    def write(
        self,
        writer: ResultWriter,
        record: dict[str, Any],
        instance: str | None = None,
        model: str | None = None,
    ) -> None:
        """Write one result record and count it (in the client's stats too, under
        ``instance``/``model``, as the pipeline counts a call)."""
        writer.write(record)
        stats = self.backend.stats
        if stats is not None and instance is not None and model is not None:
            counters = stats.counters(instance, model)
            counters.requests += 1
            response = record["response"]
            if response is None:
                kind = record["error"]["type"]
                counters.errors[kind] = counters.errors.get(kind, 0) + 1
            else:
                counters.successes += 1
                counters.input_tokens += response["usage"]["input_tokens"]
                counters.output_tokens += response["usage"]["output_tokens"]
                if response["cost"] is not None:
                    counters.cost += response["cost"]
        self.done.add(record["id"])
        if record["error"] is None:
            self.succeeded += 1
        else:
            self.failed += 1


def _missing_error(chunk: Chunk, status: BatchStatus) -> LlmxError:
    """The error of a request the ended batch gave no answer for, from how it ended."""
    where = f"batch {chunk.job.id if chunk.job else chunk.key} of {chunk.instance}"
    vendor = status.vendor_state.lower()
    if "expire" in vendor:
        msg = f"{where} expired (24 hours) before this request ran; --retry-failed runs it now"
        return ProviderTimeoutError(
            msg, provider=chunk.instance, model=chunk.model, retryable=True, code="batch_expired"
        )
    if "cancel" in vendor:
        msg = f"{where} was cancelled before this request ran; --retry-failed runs it now"
        return ProviderError(
            msg, provider=chunk.instance, model=chunk.model, retryable=True, code="batch_canceled"
        )
    if "fail" in vendor:
        msg = f"{where} failed as a whole: {status.message or 'no reason given'}"
        return BadRequestError(msg, provider=chunk.instance, model=chunk.model, code="batch_failed")
    msg = f"{where} ended ({status.vendor_state}) without a result for this request"
    return MalformedResponseError(
        msg, provider=chunk.instance, model=chunk.model, retryable=True, code="batch_no_result"
    )


async def run_provider_batch(
    backend: Backend,
    items: Sequence[BatchItem],
    output: Path,
    *,
    poll_interval: float = 10.0,
    timeout: float | None = None,
    cancel: bool = False,
    echo: Callable[[str], None] = lambda line: None,
    on_run: Callable[[ProviderBatchRun], None] | None = None,
    progress: bool = True,
    order: str = "input",
) -> ProviderBatchReport:
    """Run ``items`` (resolved, see :func:`llmx._batch.resolve_models`) through their
    providers' batch APIs into the results file ``output``; resumable (see the module
    docstring). Raises :class:`~llmx.UnsupportedFeatureError` before anything is sent
    when a provider has no batch API."""
    from llmx._batch import check_output_path

    check_output_path(output)
    results = load_results(output)
    if results.repaired_bytes:
        echo(f"llmx: {output}: dropped a torn last line ({results.repaired_bytes} bytes)")
    done = set(results.done)
    pending = [item for item in items if item.id not in done]
    runner = ProviderBatchRun(
        backend,
        items,
        output,
        poll_interval=poll_interval,
        timeout=timeout,
        cancel=cancel,
        echo=echo,
        progress=progress,
    )
    runner.done = done
    if on_run is not None:
        on_run(runner)
    refused = runner.plan(pending)
    writer = ResultWriter(output)
    try:
        for item, err in refused:
            runner.write(writer, error_record(item, err))
        report = await runner.run(writer)
    finally:
        writer.close()
    if not report.waiting and not report.stopped:
        if order == "input":
            rewrite_results(output, lambda rec: True, [item.id for item in items])
        with contextlib.suppress(FileNotFoundError):
            runner.state.path.unlink()
            _fsync_dir(output.parent)
    return attrs.evolve(report, skipped=len(items) - len(pending))


def _paths(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str] | None,
    default: Callable[[Path], Path],
) -> tuple[Path, Path]:
    source = Path(input)
    out = Path(output) if output is not None else default(source)
    if out.resolve() == source.resolve():
        msg = "the results file must not be the input file"
        raise BatchError(msg)
    return source, out


async def run_file(
    backend: Backend,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    model: str | None = None,
    poll_interval: float = 10.0,
    timeout: float | None = None,
    cancel: bool = False,
    echo: Callable[[str], None] | None = None,
) -> ProviderBatchReport:
    """:meth:`llmx.Client.provider_batch`: parse ``input`` as ``llmx batch`` does (bad lines
    reported through ``echo`` and skipped), resolve the models, run."""
    from llmx._batch import _problem_lines, default_output, read_input, resolve_models

    say = echo or (lambda line: None)
    source, out = _paths(input, output, default_output)
    parsed = read_input(source)
    for line in _problem_lines([*parsed.malformed, *parsed.duplicates]):
        say(f"llmx: warning: {source}: {line} (skipped)")
    items = resolve_models(
        parsed.items,
        override=model,
        default_model=backend.config.default_model,
        aliases=backend.config.aliases,
    )
    return await run_provider_batch(
        backend,
        items,
        out,
        poll_interval=poll_interval,
        timeout=timeout,
        cancel=cancel,
        echo=say,
    )


def run_provider_command(
    options: BatchOptions, echo: Callable[[str], None], make_client: ClientFactory
) -> int:
    """Run ``llmx batch --provider-batch`` (:func:`run_command`) and return its exit status;
    ``echo`` prints a line to standard error (dropped once nobody reads it)."""
    from llmx._batch import _tolerant

    return asyncio.run(run_command(options, _tolerant(echo), make_client))


async def run_command(
    options: BatchOptions, echo: Callable[[str], None], make_client: ClientFactory
) -> int:
    """``llmx batch --provider-batch``: exit 0 when every id has an answer, 1 when some
    failed or lines were skipped, :data:`EXIT_STILL_RUNNING` (75) when ``--timeout``
    passed with batches running, 128 + the signal when stopped (the batches go on at the
    vendor; rerunning resumes polling them). With ``retry_failed`` the ids whose result
    is an error (failed, expired, cancelled) then run through the normal pipeline."""
    import signal

    from llmx._batch import _run_command, prepare

    client, output, _parsed, problems, items = prepare(options, echo, make_client)
    runs: list[ProviderBatchRun] = []
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if runs and runs[0].stopped_by is not None:
            os._exit(128 + signum)
        for run in runs:
            run.stop(signum)

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
            pass
    try:
        async with client:
            report = await run_provider_batch(
                client.backend(),
                items,
                output,
                poll_interval=options.poll_interval,
                timeout=options.timeout,
                cancel=options.cancel,
                echo=echo,
                on_run=runs.append,
                progress=not options.quiet,
                order=options.order,
            )
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    price = {
        "batch": "at batch prices",
        "normal": "at normal prices (the model facts have no batch prices)",
        "mixed": "partly at batch prices, partly at normal prices",
    }[report.priced_as]
    echo(
        f"llmx batch --provider-batch: {report.succeeded} ok, {report.failed} failed, "
        f"{report.skipped} already done, {report.waiting} waiting on running batches; "
        f"cost ${report.cost:.6f} {price} -> {output}"
    )
    stopped_by = runs[0].stopped_by if runs else None
    if stopped_by is not None:
        name = signal.Signals(stopped_by).name
        echo(
            f"llmx: stopped by {name}; the batches keep running at the provider: run the same "
            "command again to resume polling them (nothing is submitted twice), or add "
            "--cancel to cancel them"
        )
        return 128 + stopped_by
    if report.waiting:
        echo(
            f"llmx: --timeout passed with {report.waiting} request(s) in running batches; run "
            "the same command again to resume polling them (nothing is submitted twice)"
        )
        return EXIT_STILL_RUNNING
    failed = set(load_results(output).failed) & {item.id for item in items}
    if failed and options.retry_failed:
        echo(f"llmx: {len(failed)} request(s) failed in the batches; running them again normally")
        return await _run_command(attrs.evolve(options, provider_batch=False), echo, make_client)
    if failed:
        echo(
            f"llmx: {len(failed)} request(s) failed; re-run with --retry-failed to run them "
            "again through the normal pipeline"
        )
    return 1 if failed or problems else 0
