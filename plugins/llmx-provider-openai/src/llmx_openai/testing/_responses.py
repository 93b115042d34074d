"""OpenAI's Responses API (``POST /v1/responses``) as the fake OpenAI server speaks it.

Reproduces, from OpenAI's API reference and its OpenAPI document (``CreateResponse``,
the ``response`` object, ``ResponseStreamEvent``):

* the ``response`` object: ``id`` (``resp_...``), ``object: "response"``, ``status``
  (``completed``, or ``incomplete`` with ``incomplete_details.reason``
  ``max_output_tokens`` / ``content_filter``, from the reply's ``length`` /
  ``content_filter``), ``output`` items (a ``message`` with
  ``output_text`` parts, one ``function_call`` item per tool call with ``call_id``,
  and a ``reasoning`` item first when the reply has reasoning (its text, or reasoning
  tokens) and the request asked for reasoning or for ``reasoning.encrypted_content``:
  its summary is the reply's reasoning text when the request asked for a summary, its
  ``encrypted_content`` (when included) encodes that text, its id is derived from it, so
  the same reply gives the same item), ``usage`` (``input_tokens``,
  ``output_tokens``, ``input_tokens_details.cached_tokens``,
  ``output_tokens_details.reasoning_tokens``), and the request's settings echoed;
* a stream of named server-sent events (``event: TYPE`` and ``data: {"type": TYPE,
  ..., "sequence_number": N}``): ``response.created``, ``response.in_progress``,
  per output item ``response.output_item.added``, for a message
  ``response.content_part.added``, ``response.output_text.delta`` pieces,
  ``response.output_text.done`` and ``response.content_part.done``, for a function
  call ``response.function_call_arguments.delta`` pieces and ``.done``, for a
  reasoning item with a summary ``response.reasoning_summary_part.added``,
  ``response.reasoning_summary_text.delta`` pieces, ``.done`` and
  ``response.reasoning_summary_part.done``, then
  ``response.output_item.done``; finally ``response.completed`` (or
  ``response.incomplete``) with the whole response and its usage. No ``[DONE]``.
* token logprobs when ``include`` has ``message.output_text.logprobs``: the
  ``output_text`` part's ``logprobs`` (one token per character, ``top_logprobs``
  alternatives) and each ``response.output_text.delta``'s ``logprobs`` (that delta's
  tokens); ``[]`` otherwise, as OpenAI sends;
* a stream failing part-way ends with an ``error`` event (``{"type": "error", "code",
  "message", "param", "sequence_number"}``); HTTP errors are Chat Completions' bodies.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

from llmx.testing import Event, MidStreamError, Reply, RequestView, ViewPart, merge_turns

__all__ = [
    "decrypts",
    "describe_responses_body",
    "encrypt",
    "foreign_reasoning",
    "response_events",
    "response_object",
]

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _arguments(value: Any) -> Any:
    import json

    if isinstance(value, str):
        try:
            return json.loads(value) if value else {}
        except ValueError:
            return value
    return value


def _image(url: str) -> ViewPart:
    import base64

    if url.startswith("data:") and ";base64," in url:
        head, _, data = url.partition(";base64,")
        return ViewPart("image", data=base64.b64decode(data), media_type=head[len("data:") :])
    return ViewPart("image", url=url)


def _content_parts(content: Any) -> list[ViewPart]:
    if isinstance(content, str):
        return [ViewPart("text", text=content)]
    parts: list[ViewPart] = []
    for p in content if isinstance(content, list) else ():
        if not isinstance(p, dict):
            continue
        kind = p.get("type")
        if kind in ("input_text", "output_text") and isinstance(p.get("text"), str):
            parts.append(ViewPart("text", text=p["text"]))
        elif kind == "input_image" and isinstance(p.get("image_url"), str):
            parts.append(_image(p["image_url"]))
        elif kind == "input_file":
            parts.append(_file(p))
    return parts


def _file(part: dict[str, Any]) -> ViewPart:
    """An ``input_file`` part: ``file_data`` (a data URL) or ``file_url``."""
    import base64

    name = part.get("filename")
    if isinstance(part.get("file_url"), str):
        return ViewPart("document", url=part["file_url"], name=name)
    head, _, data = str(part.get("file_data", "")).partition(";base64,")
    return ViewPart(
        "document", data=base64.b64decode(data), media_type=head[len("data:") :] or None, name=name
    )


def describe_responses_body(body: Any) -> RequestView:
    """A :class:`RequestView` of a ``POST /responses`` body."""
    if not isinstance(body, dict):
        return RequestView(None, None, ())
    systems: list[str] = []
    if isinstance(body.get("instructions"), str):
        systems.append(body["instructions"])
    turns: list[tuple[str, list[ViewPart]]] = []
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            parts = _content_parts(item.get("content"))
            if role in ("system", "developer"):
                systems.append("".join(p.text for p in parts))
            elif role in ("user", "assistant"):
                turns.append((role, parts))
        elif kind == "function_call":
            call = ViewPart(
                "tool_call",
                id=item.get("call_id"),
                name=item.get("name"),
                arguments=_arguments(item.get("arguments")),
            )
            turns.append(("assistant", [call]))
        elif kind == "function_call_output":
            output = item.get("output")
            text = (
                output
                if isinstance(output, str)
                else "".join(p.text for p in _content_parts(output))
            )
            turns.append(("user", [ViewPart("tool_result", text=text, id=item.get("call_id"))]))
    tools = tuple(
        t["name"]
        for t in body.get("tools") or ()
        if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str)
    )
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        choice = choice.get("name")
    options = body.get("text")
    found = options.get("format") if isinstance(options, dict) else None
    fmt: dict[str, Any] = found if isinstance(found, dict) else {}
    max_tokens = body.get("max_output_tokens")
    return RequestView(
        model=body.get("model") if isinstance(body.get("model"), str) else None,
        system="\n\n".join(systems) if systems else None,
        turns=merge_turns(turns),
        stream=body.get("stream") is True,
        tools=tools,
        tool_choice=choice if isinstance(choice, str) else None,
        json_mode=fmt.get("type") == "json_object",
        json_schema=fmt.get("schema") if fmt.get("type") == "json_schema" else None,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        temperature=body.get("temperature"),
        reasoning=_effort(body),
    )


def _effort(body: dict[str, Any]) -> str | None:
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return effort if isinstance(effort, str) else None


def _usage(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = reply.token_usage(describe_responses_body(body).prompt_text())
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": reply.cached_tokens},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": prompt + completion,
    }


def _wants_encrypted(body: dict[str, Any]) -> bool:
    include = body.get("include")
    return isinstance(include, list) and "reasoning.encrypted_content" in include


def _logprobs(reply: Reply, body: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """An ``output_text`` part's ``logprobs`` (OpenAI's ``LogProb``: one token per
    character, ``top_logprobs`` alternatives) when ``include`` asks for
    ``message.output_text.logprobs``; else ``[]``, as OpenAI sends."""
    include = body.get("include")
    if not isinstance(include, list) or "message.output_text.logprobs" not in include:
        return []
    top = body.get("top_logprobs")
    return reply.token_logprobs(text, top if type(top) is int else 0)


def _delta_logprobs(reply: Reply, body: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """A ``response.output_text.delta`` event's ``logprobs`` (``ResponseLogProb``: the
    tokens of that delta, alternatives without ``bytes``)."""
    return [
        {
            "token": t["token"],
            "logprob": t["logprob"],
            "top_logprobs": [
                {"token": a["token"], "logprob": a["logprob"]} for a in t["top_logprobs"]
            ],
        }
        for t in _logprobs(reply, body, text)
    ]


_ENCRYPTED = "gAAAAB-fake-"


def encrypt(text: str) -> str:
    """The fake's ``encrypted_content`` of reasoning ``text`` (it decrypts its own only)."""
    return _ENCRYPTED + base64.urlsafe_b64encode(text.encode()).decode()


def decrypts(value: Any) -> bool:
    """Whether ``value`` is encrypted content the fake issued (OpenAI rejects any other)."""
    if not isinstance(value, str) or not value.startswith(_ENCRYPTED):
        return False
    try:
        base64.urlsafe_b64decode(value[len(_ENCRYPTED) :].encode()).decode()
    except ValueError:
        return False
    return True


def foreign_reasoning(body: Any) -> str | None:
    """The id of an input ``reasoning`` item whose encrypted content the fake did not
    issue (the API answers 400 for it), or None."""
    items = body.get("input") if isinstance(body, dict) else None
    for item in items if isinstance(items, list) else ():
        if (
            isinstance(item, dict)
            and item.get("type") == "reasoning"
            and "encrypted_content" in item
            and not decrypts(item["encrypted_content"])
        ):
            return str(item.get("id"))
    return None


def _output(reply: Reply, body: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The finished output items of ``reply`` (ids derived from ``n``)."""
    items: list[dict[str, Any]] = []
    asked = isinstance(body.get("reasoning"), dict)
    if (reply.reasoning or reply.reasoning_tokens) and (asked or _wants_encrypted(body)):
        digest = hashlib.sha256(f"{reply.reasoning}|{reply.reasoning_tokens}".encode())
        item: dict[str, Any] = {
            "id": f"rs_{digest.hexdigest()[:24]}",
            "type": "reasoning",
            "summary": [],
        }
        if reply.reasoning and asked and body["reasoning"].get("summary"):
            item["summary"] = [{"type": "summary_text", "text": reply.reasoning}]
        if _wants_encrypted(body):
            item["encrypted_content"] = encrypt(reply.reasoning)
        items.append(item)
    if reply.refusal is not None:  # a refusal part (issue 15, item 7)
        items.append(
            {
                "id": f"msg_fake{n:06d}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": reply.refusal}],
            }
        )
    elif reply.text or not reply.tool_calls:
        part = {
            "type": "output_text",
            "text": reply.text,
            "annotations": [],
            "logprobs": _logprobs(reply, body, reply.text),
        }
        items.append(
            {
                "id": f"msg_fake{n:06d}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    for i, call in enumerate(reply.tool_calls):
        items.append(
            {
                "id": f"fc_fake{n:06d}_{i}",
                "type": "function_call",
                "status": "completed",
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments,
            }
        )
    return items


def response_object(
    reply: Reply,
    body: dict[str, Any],
    n: int,
    *,
    status: str | None = None,
    output: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``response`` object answering ``body`` with ``reply`` (``n``: its serial)."""
    incomplete = _INCOMPLETE.get(reply.derived_finish_reason)
    final = "incomplete" if incomplete else "completed"
    obj: dict[str, Any] = {
        "id": reply.id or f"resp_fake{n:06d}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status or final,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": incomplete} if incomplete and not status else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": reply.model or body.get("model") or "gpt-4o-mini",
        "output": _output(reply, body, n) if output is None else output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "metadata": {},
    }
    if not status and not reply.omit_usage:
        obj["usage"] = _usage(reply, body)  # not nullable: absent until the end
    return obj


def response_events(reply: Reply, body: dict[str, Any], n: int) -> list[Any]:
    """The named SSE events streaming ``reply`` as an answer to ``body``."""
    events: list[Any] = []

    def emit(kind: str, **data: Any) -> None:
        events.append(Event({"type": kind, **data, "sequence_number": len(events)}, name=kind))

    emit(
        "response.created",
        response=response_object(reply, body, n, status="in_progress", output=[]),
    )
    emit(
        "response.in_progress",
        response=response_object(reply, body, n, status="in_progress", output=[]),
    )
    done = _output(reply, body, n)
    for index, item in enumerate(done):
        kind = item["type"]
        if kind == "reasoning":
            added = {**item, "summary": []}
            added.pop("encrypted_content", None)
            emit("response.output_item.added", output_index=index, item=added)
            ids = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            for summary in item["summary"]:
                blank = {"type": "summary_text", "text": ""}
                emit("response.reasoning_summary_part.added", **ids, part=blank)
                for piece in reply.reasoning_pieces():
                    emit("response.reasoning_summary_text.delta", **ids, delta=piece)
                emit("response.reasoning_summary_text.done", **ids, text=summary["text"])
                emit("response.reasoning_summary_part.done", **ids, part=summary)
        elif kind == "message":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            part = item["content"][0]
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            if part["type"] == "refusal":
                emit("response.content_part.added", **ids, part={"type": "refusal", "refusal": ""})
                for piece in Reply(part["refusal"], chunk_size=reply.chunk_size).text_pieces():
                    emit("response.refusal.delta", **ids, delta=piece)
                emit("response.refusal.done", **ids, refusal=part["refusal"])
                emit("response.content_part.done", **ids, part=part)
                emit("response.output_item.done", output_index=index, item=item)
                continue
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            emit("response.content_part.added", **ids, part=empty)
            for piece in reply.text_pieces():
                logprobs = _delta_logprobs(reply, body, piece)
                emit("response.output_text.delta", **ids, delta=piece, logprobs=logprobs)
            emit("response.output_text.done", **ids, text=reply.text, logprobs=part["logprobs"])
            emit("response.content_part.done", **ids, part=part)
        else:
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            ids = {"item_id": item["id"], "output_index": index}
            for piece in reply.argument_pieces(item["arguments"]):
                emit("response.function_call_arguments.delta", **ids, delta=piece)
            emit(
                "response.function_call_arguments.done",
                **ids,
                name=item["name"],
                arguments=item["arguments"],
            )
        emit("response.output_item.done", output_index=index, item=item)
    final = response_object(reply, body, n, output=done)
    emit(f"response.{final['status']}", response=final)
    return events


def mid_stream_error(reply: MidStreamError, sequence_number: int) -> Event:
    """The ``error`` event a failing stream ends with (OpenAI's generic server error
    unless ``reply.error`` gives ``code``/``type`` and ``message``)."""
    error = dict(reply.error or {})
    code = error.get("code") or error.get("type") or "server_error"
    message = error.get("message") or (
        "The server had an error processing your request. Sorry about that! You can retry "
        "your request, or contact us through our help center at help.openai.com if you keep "
        "seeing this error."
    )
    data = {
        "type": "error",
        "code": code,
        "message": message,
        "param": error.get("param"),
        "sequence_number": sequence_number,
    }
    return Event(data, name="error")
