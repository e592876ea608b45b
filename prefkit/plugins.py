"""Plugin discovery through entry points (`prefkit.samplers`, `.labelers`, `.trainers`, `.evals`), and
`construct_plugin`, the one way every kind of plugin is built with its options checked.

The contracts plugins implement are in `prefkit.protocols`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from pydantic import ValidationError

from prefkit.errors import ConfigError, DependencyError
from prefkit.validation import refuse_non_finite

GROUPS = {
    "samplers": "prefkit.samplers",
    "labelers": "prefkit.labelers",
    "trainers": "prefkit.trainers",
    "evals": "prefkit.evals",
}

# the option that names a plugin of each kind (errors name it as the field)
OPTION_NAMES = {"samplers": "backend", "labelers": "labeler", "trainers": "trainer", "evals": "evaluator"}
# what an error calls a plugin of each kind ("the reward-kl evaluator cannot honour ...")
NOUNS = {"samplers": "sampler", "labelers": "labeler", "trainers": "trainer", "evals": "evaluator"}
# the option that holds a plugin's own options (errors name `<field>.<key>`)
OPTIONS_FIELDS = {
    "samplers": "engine",
    "labelers": "labeler_options",
    "trainers": "options",
    "evals": "options",
}


@dataclass(frozen=True)
class PluginInfo:
    group: str
    name: str
    target: str
    distribution: str


def list_plugins(kind: str) -> list[PluginInfo]:
    """Every installed plugin of one kind, sorted by name."""
    group = GROUPS[kind]
    found = []
    for entry in metadata.entry_points(group=group):
        dist = entry.dist.name if entry.dist is not None else "?"
        found.append(PluginInfo(group=group, name=entry.name, target=entry.value, distribution=dist))
    return sorted(found, key=lambda info: info.name)


def load_plugin(kind: str, name: str) -> Any:
    """Load the object a plugin's entry point names; a clear error lists the installed alternatives."""
    group = GROUPS[kind]
    entries = {entry.name: entry for entry in metadata.entry_points(group=group)}
    if name not in entries:
        available = ", ".join(sorted(entries)) or "none"
        raise ConfigError(
            f"no {kind[:-1]} plugin named '{name}' (installed: {available})", field=OPTION_NAMES[kind]
        )
    try:
        return entries[name].load()
    except ImportError as error:
        raise DependencyError(
            f"the {kind[:-1]} plugin '{name}' could not be imported: {error}",
            hint="install the optional dependency it needs (see README, 'Install')",
        ) from None


def declared_options(plugin: Any) -> list[str] | None:
    """The option names a plugin accepts: its `options_model`'s fields when it has one (trainers), else
    its constructor's keyword parameters (labelers, evaluators); None when it takes any (`**kwargs`)."""
    model = getattr(plugin, "options_model", None)
    if model is not None:
        return list(model.model_fields)
    if not callable(plugin):  # a constructed trainer without an options model takes none
        return []
    try:
        parameters = inspect.signature(plugin).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check against
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in keyword]


def check_options(kind: str, name: str, plugin: Any, options: Mapping[str, Any], field: str) -> Any:
    """`options` checked against what the plugin declares, the same way for every kind.

    NaN/inf values and undeclared names are refused with one ConfigError naming `<field>.<key>` (a
    plugin's `options_model.refused` may say why it cannot honour a name); a plugin with an
    `options_model` also gets its values validated and receives the model instance, others the dict.
    """
    options = dict(options)
    refuse_non_finite(options, field)
    accepted = declared_options(plugin)
    model = getattr(plugin, "options_model", None)
    unknown = sorted(set(options) - set(accepted)) if accepted is not None else []
    if unknown:
        key = unknown[0]
        refused = getattr(model, "refused", {}).get(key)
        raise ConfigError(
            f"the {name} {NOUNS[kind]} cannot honour option '{key}'" + (f": {refused}" if refused else ""),
            field=f"{field}.{key}",
            hint=f"its options: {', '.join(sorted(accepted)) or 'none'}",
        )
    if model is None:
        try:  # a required constructor argument left out fails here, not half-way through a run
            if accepted is not None:
                inspect.signature(plugin).bind(**options)
        except TypeError as error:
            raise ConfigError(f"the {name} {NOUNS[kind]} needs more options ({error})", field=field) from None
        return options
    try:
        return model(**options)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if not key:  # a model-level check names its field first ("ld_alpha must be in [0, 1]")
            key = message.split()[0]
        raise ConfigError(message, field=f"{field}.{key}") from None


def construct_plugin(
    kind: str, name: str, options: Any = None, *, field: str | None = None, model: str | None = None
) -> Any:
    """Load plugin `name` of `kind`, check `options` (errors name `<field>.<key>`) and construct it.

    Constructors by kind (see `prefkit.protocols`): samplers `Cls(model, options)`, where `options` is
    the engine's `SamplerOptions` record core built and validated already; trainers `Cls()` (their
    options travel with each TrainRequest, so here they are only checked, against the instance's
    `options_model`); labelers and evaluators `Cls(**options)`. `field` defaults to the kind's options
    field (`labeler_options`, `options`).
    """
    if kind == "samplers":
        return load_plugin(kind, name)(model, options)
    field = field or OPTIONS_FIELDS[kind]
    if kind == "trainers":
        plugin = load_plugin(kind, name)
        trainer = plugin() if isinstance(plugin, type) else plugin
        check_options(kind, name, trainer, dict(options or {}), field)
        return trainer
    return check_plugin(kind, name, options, field=field)(**dict(options or {}))


def check_plugin(
    kind: str, name: str, options: Mapping[str, Any] | None = None, *, field: str | None = None
) -> Any:
    """The plugin's class (or factory) after checking that it exists and accepts `options`; nothing is built.

    Lets a run check every plugin it will use before it writes anything.
    """
    plugin = load_plugin(kind, name)
    check_options(kind, name, plugin, dict(options or {}), field or OPTIONS_FIELDS[kind])
    return plugin
