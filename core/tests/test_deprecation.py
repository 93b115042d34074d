"""llmx.deprecation: a deprecated name keeps working, warns LlmxDeprecationWarning at the
caller's line with the removal version and the replacement, and no deprecation of llmx
outlives the release it promised to remove it in.

pytest turns warnings into errors here (filterwarnings = error), so every deprecated
call below is inside ``pytest.warns``: a call that did not warn fails the test.
"""

from __future__ import annotations

import subprocess
import sys
import types
import warnings

import pluggy
import pytest

import llmx
from llmx.deprecation import (
    Deprecation,
    LlmxDeprecationWarning,
    deprecated,
    deprecations,
    hook_argument,
    moved_attributes,
    renamed_parameters,
    warn_deprecated,
)


def test_the_warning_is_a_deprecation_warning() -> None:
    assert issubclass(LlmxDeprecationWarning, DeprecationWarning)


def test_the_message_names_what_since_when_it_goes_and_the_replacement() -> None:
    d = Deprecation("llmx.Old", removed_in="0.3.0", instead="llmx.types.New", since="0.2.0")
    assert d.message() == (
        "llmx.Old is deprecated since llmx 0.2.0 and will be removed in llmx 0.3.0; "
        "use llmx.types.New instead"
    )
    mine = Deprecation("acme.f()", removed_in="2.0.0", package="llmx-acme", reason="unused")
    assert (
        mine.message() == "acme.f() is deprecated and will be removed in llmx-acme 2.0.0 (unused)"
    )
    with pytest.raises(ValueError, match="needs removed_in"):
        Deprecation("x", removed_in="")


@pytest.fixture
def old_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A module whose ``OldRequest`` moved to ``llmx:Request``, with a fallback."""
    module = types.ModuleType("acme_old")

    def fallback(name: str) -> object:
        if name == "lazy":
            return "from the fallback"
        msg = f"module 'acme_old' has no attribute {name!r}"
        raise AttributeError(msg)

    module.__getattr__ = moved_attributes(  # type: ignore[method-assign]
        "acme_old", {"OldRequest": "llmx:Request"}, removed_in="0.3.0", fallback=fallback
    )
    monkeypatch.setitem(sys.modules, "acme_old", module)
    return module


def test_a_moved_attribute_warns_at_the_callers_line_and_returns_the_new_object(
    old_module: types.ModuleType,
) -> None:
    with pytest.warns(LlmxDeprecationWarning) as caught:
        value = old_module.OldRequest
    assert value is llmx.Request
    (warning,) = caught
    assert str(warning.message) == (
        "acme_old.OldRequest is deprecated and will be removed in llmx 0.3.0; "
        "use llmx.Request instead"
    )
    assert warning.filename == __file__  # the user's line, not llmx's


def test_from_import_of_a_moved_attribute_warns(old_module: types.ModuleType) -> None:
    with pytest.warns(LlmxDeprecationWarning, match=r"acme_old\.OldRequest is deprecated"):
        from acme_old import OldRequest  # type: ignore[import-not-found]
    assert OldRequest is llmx.Request


def test_other_names_go_to_the_fallback_without_a_warning(old_module: types.ModuleType) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert old_module.lazy == "from the fallback"
        with pytest.raises(AttributeError, match="no attribute 'missing'"):
            old_module.missing  # noqa: B018


def test_a_moved_attribute_needs_module_colon_name() -> None:
    with pytest.raises(ValueError, match="'module:name'"):
        moved_attributes("m", {"Old": "llmx.Request"}, removed_in="0.3.0")
    getattr_ = moved_attributes("m", {}, removed_in="0.3.0")
    with pytest.raises(AttributeError, match="module 'm' has no attribute 'x'"):
        getattr_("x")


def test_a_deprecated_function_warns_and_still_runs() -> None:
    @deprecated(removed_in="0.3.0", instead="add()", since="0.2.0")
    def plus(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    with pytest.warns(LlmxDeprecationWarning) as caught:
        assert plus(1, 2) == 3
    assert str(caught[0].message) == (
        f"{__name__}.test_a_deprecated_function_warns_and_still_runs.<locals>.plus() is "
        "deprecated since llmx 0.2.0 and will be removed in llmx 0.3.0; use add() instead"
    )
    assert caught[0].filename == __file__
    assert plus.__name__ == "plus"
    assert plus.__doc__ is not None
    assert "Deprecated:" in plus.__doc__


def test_a_renamed_keyword_argument_warns_and_is_passed_under_its_new_name() -> None:
    @renamed_parameters({"timeout_s": "timeout"}, removed_in="0.3.0")
    def call(*, timeout: float = 1.0) -> float:
        return timeout

    with pytest.warns(LlmxDeprecationWarning, match=r"the argument timeout_s= of .*call\(\)"):
        assert call(timeout_s=5.0) == 5.0  # type: ignore[call-arg]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert call(timeout=2.0) == 2.0  # the new name: no warning
    with pytest.raises(TypeError, match=r"got both timeout_s= and timeout=; .* pass only timeout="):
        call(timeout_s=1.0, timeout=2.0)  # type: ignore[call-arg]


def test_warn_deprecated_points_at_the_caller_of_the_function_that_detects_it() -> None:
    def load(form: str) -> None:
        if form == "old":
            warn_deprecated("the 'old' form", removed_in="0.3.0", instead="the 'new' form")

    with pytest.warns(LlmxDeprecationWarning, match="the 'old' form is deprecated") as caught:
        load("old")
    assert caught[0].filename == __file__


def test_a_hook_argument_deprecation_warns_through_pluggy() -> None:
    spec = pluggy.HookspecMarker("acme")
    impl = pluggy.HookimplMarker("acme")

    class Specs:
        @spec(
            warn_on_impl_args={
                "config": hook_argument("acme_start", "config", removed_in="0.3.0", instead="event")
            }
        )
        def acme_start(self, event: object, config: object) -> None:
            """Called at start."""

    class OldPlugin:
        @impl
        def acme_start(self, event: object, config: object) -> None:
            pass

    class NewPlugin:
        @impl
        def acme_start(self, event: object) -> None:
            pass

    pm = pluggy.PluginManager("acme")
    pm.add_hookspecs(Specs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pm.register(NewPlugin())
    with pytest.warns(
        LlmxDeprecationWarning, match=r"the argument 'config' of the hook acme_start is deprecated"
    ):
        pm.register(OldPlugin())


def test_deprecations_are_recorded() -> None:
    @deprecated(removed_in="9.0.0", package="llmx-acme", name="acme.thing")
    def thing() -> None: ...

    assert "acme.thing()" in [d.name for d in deprecations()]


OVERDUE = """
import llmx, llmx.deprecation, llmx.plugin, llmx.structured, llmx.testing, llmx.types
from packaging.version import Version
current = Version(llmx.__version__)
for d in llmx.deprecation.deprecations():
    if d.package == "llmx" and Version(d.removed_in) <= current:
        print(d.message())
"""


def test_no_deprecation_of_llmx_outlives_its_removal_version() -> None:
    """When llmx reaches the version a deprecation promised to remove its name in, the
    name must go (and this test says which). Run apart, so only llmx's own count."""
    out = subprocess.run(
        [sys.executable, "-c", OVERDUE], capture_output=True, text=True, check=True
    ).stdout
    assert not out, f"remove these names now (llmx is {llmx.__version__}):\n{out}"
