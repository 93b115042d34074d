"""``llmx batch`` SIGKILLed three times in a row and resumed: every id exactly once, and
no request finished before a kill is sent again. Prints the figures (``-s``)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.test_batch_cli import (  # the batch CLI tests' server, config and helpers
    BatchServer,
    assert_exactly_once,
    batch_args,
    config,  # noqa: F401  (a fixture)
    env,
    results,
    run_batch,
    server,  # noqa: F401  (a fixture)
    wait_for_lines,
    write_requests,
)


def test_three_kills_then_a_resume_answer_every_id_exactly_once(
    tmp_path: Path,
    server: BatchServer,  # noqa: F811
    config: Path,  # noqa: F811
    scale: int,
) -> None:
    total = 1500 * scale
    ids = write_requests(tmp_path / "in.jsonl", total)
    server.delay = 0.02
    out = tmp_path / "out.jsonl"
    args = batch_args(config, "in.jsonl", "-o", str(out), "-m", "fake/m", "-c", "8", "--quiet")
    done_before_kill: list[int] = []
    snapshots: list[tuple[set[str], dict[str, int]]] = []
    for kill in range(3):
        proc = subprocess.Popen(
            args, cwd=tmp_path, env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        wait_for_lines(out, 200 * (kill + 1), proc)
        proc.kill()
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        rows = results(out)
        assert len({r["custom_id"] for r in rows}) == len(rows)  # nothing twice so far
        done_before_kill.append(len(rows))
        snapshots.append(({r["custom_id"] for r in rows}, dict(server.prompts())))
    server.delay = 0.0
    resumed = run_batch(tmp_path, config, "in.jsonl", "-o", str(out), "-m", "fake/m", "-c", "8")
    assert resumed.returncode == 0, resumed.stderr
    rows = results(out)
    assert_exactly_once(rows, ids)
    sent = server.prompts()
    # An id written before a kill is never asked again after it.
    again = sum(
        1
        for finished, counts in snapshots
        for i in finished
        if sent[f"prompt of {i}"] != counts[f"prompt of {i}"]
    )
    asked_twice = sum(1 for count in sent.values() if count > 1)
    print(
        f"\n[batch kills] {total} requests, SIGKILL after {done_before_kill} results; the "
        f"resume wrote {len(rows)} rows, every id once; {asked_twice} requests were asked "
        f"twice (in flight at a kill), {again} finished ones asked again"
    )
    assert again == 0
