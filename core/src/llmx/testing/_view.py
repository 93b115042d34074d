"""A provider-neutral view of a request a fake server received.

Each fake server parses its own wire format (OpenAI's ``messages``, Anthropic's content
blocks, Gemini's ``contents`` and ``parts``) into a :class:`RequestView`, so tests and
the conformance kit can check *what* a provider sent — the system prompt, the turns,
images, tool calls and results, JSON mode — without knowing any wire format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["RequestView", "ViewPart", "ViewTurn"]


@attrs.frozen
class ViewPart:
    """One content part of a turn.

    ``kind`` is ``"text"`` (``text``), ``"image"`` (``url``, or ``data`` bytes with
    ``media_type``), ``"tool_call"`` (``id``, ``name``, ``arguments`` parsed from JSON)
    or ``"tool_result"`` (``id`` of the call answered, ``name`` where the wire format
    names the tool, ``text`` the result as text — a structured result as compact
    JSON — and ``is_error``), ``"document"`` (``url``, or ``data`` bytes; ``media_type``;
    ``name`` the title or file name, where the wire format carries one) or ``"audio"``
    (``data`` bytes and ``media_type``, e.g. ``audio/wav``).
    """

    kind: Literal["text", "image", "tool_call", "tool_result", "document", "audio"]
    text: str = ""
    url: str | None = None
    data: bytes | None = attrs.field(default=None, repr=False)
    media_type: str | None = None
    id: str | None = None
    name: str | None = None
    arguments: Any = None
    is_error: bool = False

    def result_value(self) -> Any:
        """A tool result's content parsed as JSON when it is JSON, else the text."""
        try:
            return json.loads(self.text)
        except ValueError:
            return self.text


@attrs.frozen
class ViewTurn:
    """The parts one side contributed in a row: ``user`` (incl. tool results) or ``assistant``."""

    role: Literal["user", "assistant"]
    parts: tuple[ViewPart, ...]

    @property
    def text(self) -> str:
        """The concatenated text parts."""
        return "".join(p.text for p in self.parts if p.kind == "text")


@attrs.frozen
class RequestView:
    """What a request asked for, independent of the wire format.

    ``turns`` are the conversation after the system prompt, consecutive messages of
    one side merged (OpenAI's ``tool`` messages count as the user's side).
    ``tool_choice`` is ``"auto"``, ``"none"``, ``"required"`` or the one tool's name;
    ``json_mode`` means any JSON object was asked for, ``json_schema`` the schema the
    answer must match (as the provider sent it).
    """

    model: str | None
    system: str | None
    turns: tuple[ViewTurn, ...]
    stream: bool = False
    tools: tuple[str, ...] = ()
    tool_choice: str | None = None
    json_mode: bool = False
    json_schema: Mapping[str, Any] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    reasoning: str | int | None = None
    """The reasoning the request asked for, as the vendor's parameter says it: an effort
    level (``"low"``, ...) or a token budget; ``"none"`` when it turns reasoning off;
    None when the request set nothing."""

    def last_user_text(self) -> str:
        """The text of the last user turn (what the fake servers echo by default)."""
        for turn in reversed(self.turns):
            if turn.role == "user":
                return turn.text
        return ""

    def prompt_text(self) -> str:
        """All text of the request, system prompt included (for computed usage)."""
        texts = [self.system] if self.system else []
        texts.extend(turn.text for turn in self.turns)
        return "\n".join(t for t in texts if t)

    def parts(self, kind: str) -> list[ViewPart]:
        """Every part of ``kind`` across the turns, in order."""
        return [p for turn in self.turns for p in turn.parts if p.kind == kind]


def merge_turns(turns: list[tuple[str, list[ViewPart]]]) -> tuple[ViewTurn, ...]:
    """Turns with consecutive ones of the same side merged (roles already normalised)."""
    out: list[tuple[str, list[ViewPart]]] = []
    for role, parts in turns:
        if out and out[-1][0] == role:
            out[-1][1].extend(parts)
        else:
            out.append((role, list(parts)))
    return tuple(ViewTurn(role, tuple(parts)) for role, parts in out)  # type: ignore[arg-type]
