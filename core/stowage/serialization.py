"""(De)serialisation of configuration and models: Nexus's camelCase JSON and TOML <-> attrs classes.

The converter is built by a factory after plugins are loaded, so format-specific settings classes are
known to it; it forbids unknown keys and reports errors with the path of the offending key.
"""

from __future__ import annotations

import copy
import enum
import re
from typing import Any, Mapping

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from stowage.errors import ConfigurationError, InvalidSettings
from stowage.models import RepositoryConfig
from stowage.registration import Format

_CAMEL_BOUNDARY = re.compile(r"_([a-z0-9])")
#: RepositoryConfig fields that are not keys of the JSON/TOML document.
_NOT_SERIALISED = ("format_settings", "enum_spellings")


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

    def structure_enum_factory(cls: type[enum.Enum]) -> Any:
        by_spelling = {}
        for member in cls:
            by_spelling.setdefault(str(member.value).lower(), member)
            by_spelling.setdefault(member.name.lower(), member)

        def structure_enum(value: Any, _: type) -> enum.Enum:
            # Nexus documents spell one enum in both cases (3.42's generated clients send ``allow_once``,
            # 3.91 says ``ALLOW_ONCE``): either is accepted.
            member = by_spelling.get(str(value).lower()) if isinstance(value, str) else None
            if member is None:
                raise ValueError(f"{value!r} is not one of {', '.join(str(m.value) for m in cls)}")
            return member

        return structure_enum

    converter.register_structure_hook_factory(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), structure_enum_factory)
    converter.register_structure_hook_factory(attrs.has, structure_factory)
    converter.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    formats = dict(formats or {})

    def structure_repository(data: Mapping[str, Any], _: type) -> RepositoryConfig:
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a repository must be a table/object, not {type(data).__name__}")
        data = dict(data)
        sent = copy.deepcopy(data)
        if "routingRuleName" in data:  # GET answers carry Nexus's response name; accept it back in a PUT
            rule = data.pop("routingRuleName")
            data.setdefault("routingRule", rule)
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
        config = attrs.evolve(config, format_settings=sections)
        return attrs.evolve(config, enum_spellings=case_spellings(sent, canonical(config)))

    def canonical(config: RepositoryConfig) -> dict[str, Any]:
        base = {camel(a.name): converter.unstructure(getattr(config, a.name))
                for a in attrs.fields(RepositoryConfig) if a.name not in _NOT_SERIALISED}
        for section, value in config.format_settings.items():
            base[section] = converter.unstructure(value)
        return without_nulls(base)

    def unstructure_repository(config: RepositoryConfig) -> dict[str, Any]:
        document = canonical(config)
        for dotted, spelling in config.enum_spellings.items():
            *parents, key = dotted.split(".")
            parent: Any = document
            for part in parents:
                parent = parent.get(part) if isinstance(parent, dict) else None
            if isinstance(parent, dict) and isinstance(parent.get(key), str) \
                    and parent[key].lower() == spelling.lower():
                parent[key] = spelling
        return document

    base_structure = make_dict_structure_fn(
        RepositoryConfig, converter, _cattrs_forbid_extra_keys=True,
        **{name: override(omit=True) for name in _NOT_SERIALISED},
        **{a.name: override(rename=camel(a.name)) for a in attrs.fields(RepositoryConfig)
           if a.name not in _NOT_SERIALISED})
    converter.register_structure_hook(RepositoryConfig, structure_repository)
    converter.register_unstructure_hook(RepositoryConfig, unstructure_repository)
    return converter


def without_nulls(value: Any) -> Any:
    """``value`` without the null members of its objects, at every depth (Nexus's schemas have no
    nullable fields: an unset optional field is absent, not ``null``)."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def case_spellings(sent: Any, stored: Any, prefix: str = "") -> dict[str, str]:
    """Dotted paths where ``sent`` spells a string of ``stored`` in another case (enum values), with the
    spelling sent."""
    found: dict[str, str] = {}
    if isinstance(sent, Mapping) and isinstance(stored, Mapping):
        for key, value in sent.items():
            if key in stored:
                found.update(case_spellings(value, stored[key], f"{prefix}{key}."))
    elif isinstance(sent, str) and isinstance(stored, str) and sent != stored and sent.lower() == stored.lower():
        found[prefix.rstrip(".")] = sent
    return found


_SNAKE_SEGMENT = re.compile(r"\.([a-z0-9]+(?:_[a-z0-9]+)+)")


def _describe(error: BaseException, type_: Any) -> str:
    if isinstance(error, ValueError) and not isinstance(error, cattrs.BaseValidationError) and str(error):
        return str(error)
    return cattrs.v.format_exception(error, type_)


_AT_PATH = re.compile(r" @ \$\.?(?P<path>[^ ]*)$")


def _field_error(message: str) -> dict[str, str]:
    """cattrs' ``extra fields found (x) @ $.storage`` as Nexus's ``{"id": "PARAMETER storage", ...}``;
    ``*`` for the root."""
    found = _AT_PATH.search(message)
    path = (found.group("path") or "") if found else ""
    return {"id": f"PARAMETER {path}" if path else "*", "message": message}


def structure(converter: cattrs.Converter, data: Any, cls: type, where: str) -> Any:
    """Structure ``data`` as ``cls``; a failure becomes a ConfigurationError naming each bad key."""
    try:
        return converter.structure(data, cls)
    except ConfigurationError:
        raise
    except (cattrs.ClassValidationError, cattrs.IterableValidationError) as error:
        messages = cattrs.transform_error(error, path=f"$.{where}" if where else "$",
                                          format_exception=_describe)
        messages = [_SNAKE_SEGMENT.sub(lambda m: "." + camel(m.group(1)), msg) for msg in messages]
        raise InvalidSettings([_field_error(msg) for msg in messages]) from None
    except (ValueError, TypeError, KeyError) as error:
        raise ConfigurationError(f"{where or 'configuration'}: {error}") from None
