"""A credential that never shows itself: read from the environment, a file or a literal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from llmx._errors import ConfigError
from llmx._scrub import remember

_REDACTED = "***"


@attrs.frozen(repr=False)
class Secret:
    """A secret value, given as ``{ env = "NAME" }``, ``{ file = "path" }`` or a literal.

    The value is read when :meth:`get` is called, so a missing variable is reported
    only for instances actually used. ``repr`` and ``str`` never show the value: an
    environment variable's or file's *name* is shown, a literal is shown as ``***``.
    """

    env: str | None = None
    """The environment variable holding the secret."""
    file: str | None = None
    """The file holding the secret (its content, surrounding whitespace stripped)."""
    value: str | None = attrs.field(default=None, eq=False, hash=False)
    """The secret itself, when the config gives it as a literal string."""
    where: str = attrs.field(default="", eq=False, hash=False)
    """The config path it came from, for error messages (e.g. ``$.providers.main.api_key``)."""

    def __attrs_post_init__(self) -> None:
        remember(self.value)
        given = sum(x is not None for x in (self.env, self.file, self.value))
        if given != 1:
            msg = "a secret needs exactly one of env = 'NAME', file = 'path' or a literal string"
            raise ValueError(msg)

    @classmethod
    def from_env(cls, name: str) -> Secret:
        """A secret read from the environment variable ``name``."""
        return cls(env=name)

    @classmethod
    def literal(cls, value: str) -> Secret:
        """A secret given directly (prefer ``env``/``file`` in config files)."""
        return cls(value=value)

    def is_available(self) -> bool:
        """Whether :meth:`get` would find a value."""
        if self.env is not None:
            return bool(os.environ.get(self.env))
        if self.file is not None:
            return Path(self.file).expanduser().is_file()
        return True

    def get(self) -> str:
        """The secret's value; raises :class:`ConfigError` naming where it should be."""
        where = f" (needed by {self.where})" if self.where else ""
        if self.value is not None:
            value = self.value
        elif self.env is not None:
            found = os.environ.get(self.env)
            if not found:
                msg = f"environment variable {self.env} is not set{where}; export {self.env}=..."
                raise ConfigError(msg)
            value = found
        else:
            assert self.file is not None
            path = Path(self.file).expanduser()
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as err:
                msg = f"cannot read secret file {str(path)!r}{where}: {err.strerror}"
                raise ConfigError(msg) from None
        remember(value)  # scrubbed from every error, log line and CLI output from now on
        return value

    def describe(self) -> Any:
        """A redacted, JSON-ready description (what ``llmx config check`` prints)."""
        if self.env is not None:
            return {"env": self.env}
        if self.file is not None:
            return {"file": self.file}
        return _REDACTED

    def __repr__(self) -> str:
        if self.env is not None:
            return f"Secret(env={self.env!r})"
        if self.file is not None:
            return f"Secret(file={self.file!r})"
        return f"Secret({_REDACTED!r})"

    __str__ = __repr__
