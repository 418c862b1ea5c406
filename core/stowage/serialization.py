"""(De)serialisation of configuration and models: Nexus's camelCase JSON and TOML <-> attrs classes.

The converter is built by a factory after plugins are loaded, so format-specific settings classes are
known to it; it forbids unknown keys and reports errors with the path of the offending key.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from stowage.errors import ConfigurationError
from stowage.models import RepositoryConfig
from stowage.registration import Format

_CAMEL_BOUNDARY = re.compile(r"_([a-z0-9])")


def iso_time(timestamp: float | None) -> str | None:
    """ISO-8601 in UTC with milliseconds, as Nexus's REST API writes dates; None (or 0) stays None."""
    import datetime

    if not timestamp:
        return None
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc).isoformat(timespec="milliseconds")


def camel(name: str) -> str:
    return _CAMEL_BOUNDARY.sub(lambda m: m.group(1).upper(), name)


def make_converter(formats: Mapping[str, Format] | None = None) -> cattrs.Converter:
    """A converter for every attrs model, with camelCase keys and unknown keys refused."""
    converter = cattrs.Converter(forbid_extra_keys=True)

    def structure_factory(cls: type) -> Any:
        renames = {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)}
        return make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True, **renames)

    def unstructure_factory(cls: type) -> Any:
        renames = {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)}
        return make_dict_unstructure_fn(cls, converter, **renames)

    converter.register_structure_hook_factory(attrs.has, structure_factory)
    converter.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    formats = dict(formats or {})

    def structure_repository(data: Mapping[str, Any], _: type) -> RepositoryConfig:
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a repository must be a table/object, not {type(data).__name__}")
        data = dict(data)
        fmt = formats.get(str(data.get("format", "")))
        sections = {}
        # Errors in format sections and in core fields are reported together, each with its full path
        # (``$.repositories[0].raw.contentDisposition``), so they are collected as one validation group.
        errors: list[Exception] = []
        for section, cls in (fmt.settings.items() if fmt else ()):
            if section in data:
                try:
                    sections[section] = converter.structure(data.pop(section), cls)
                except Exception as error:
                    error.__notes__ = [*getattr(error, "__notes__", []), AttributeValidationNote(
                        f"Structuring class RepositoryConfig @ attribute {section}", section, cls)]
                    errors.append(error)
        try:
            config = base_structure(data, RepositoryConfig)
        except cattrs.ClassValidationError as error:
            errors.extend(error.exceptions)
        except (ValueError, TypeError) as error:
            if not errors:
                raise ConfigurationError(f"repository {data.get('name')!r}: {error}") from None
        if errors:
            raise cattrs.ClassValidationError("While structuring RepositoryConfig", errors, RepositoryConfig)
        return attrs.evolve(config, format_settings=sections)

    def unstructure_repository(config: RepositoryConfig) -> dict[str, Any]:
        base = {camel(a.name): converter.unstructure(getattr(config, a.name))
                for a in attrs.fields(RepositoryConfig) if a.name != "format_settings"}
        base = {key: value for key, value in base.items() if value is not None}
        for section, value in config.format_settings.items():
            base[section] = converter.unstructure(value)
        return base

    base_structure = make_dict_structure_fn(
        RepositoryConfig, converter, _cattrs_forbid_extra_keys=True,
        format_settings=override(omit=True),
        **{a.name: override(rename=camel(a.name)) for a in attrs.fields(RepositoryConfig) if a.name != "format_settings"})
    converter.register_structure_hook(RepositoryConfig, structure_repository)
    converter.register_unstructure_hook(RepositoryConfig, unstructure_repository)
    return converter


_SNAKE_SEGMENT = re.compile(r"\.([a-z0-9]+(?:_[a-z0-9]+)+)")


def _describe(error: BaseException, type_: Any) -> str:
    if isinstance(error, ValueError) and not isinstance(error, cattrs.BaseValidationError) and str(error):
        return str(error)
    return cattrs.v.format_exception(error, type_)


def structure(converter: cattrs.Converter, data: Any, cls: type, where: str) -> Any:
    """Structure ``data`` as ``cls``; a failure becomes a ConfigurationError naming each bad key."""
    try:
        return converter.structure(data, cls)
    except ConfigurationError:
        raise
    except (cattrs.ClassValidationError, cattrs.IterableValidationError) as error:
        messages = cattrs.transform_error(error, path=f"$.{where}" if where else "$",
                                          format_exception=_describe)
        raise ConfigurationError("; ".join(_SNAKE_SEGMENT.sub(lambda m: "." + camel(m.group(1)), msg)
                                           for msg in messages)) from None
    except (ValueError, TypeError, KeyError) as error:
        raise ConfigurationError(f"{where or 'configuration'}: {error}") from None
