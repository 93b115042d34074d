"""llmx provider plugin for the (imaginary) Template API: a complete provider to copy.

Configure an instance with::

    [providers.tmpl]
    type = "template"                      # imports this plugin, and only then
    api_key = { env = "TEMPLATE_API_KEY" }  # or set TEMPLATE_API_KEY
    base_url = "http://127.0.0.1:8080/v1"  # optional; also $TEMPLATE_BASE_URL

and ask for ``tmpl/tmpl-small``. The provider is in ``_provider.py``; the fake Template
API the tests run against is :mod:`llmx_provider_template.testing`.
"""

from __future__ import annotations

from llmx.plugin import Register, hookimpl
from llmx_provider_template._provider import (
    DEFAULT_BASE_URL,
    MODELS,
    TemplateProvider,
    TemplateSettings,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "MODELS",
    "TemplateProvider",
    "TemplateSettings",
    "llmx_register_providers",
]


@hookimpl
def llmx_register_providers(register: Register) -> None:
    """Register the ``template`` provider type (named like the entry point)."""
    register("template", TemplateProvider, settings=TemplateSettings)
