"""``validate_data_using_schema``: JSON Schema validation that also knows ``{"type": "attachment"}``
(jsonschema, imported by the call)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from intunedd.workers.shim.intuned_browser._attachments import Attachment

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.protocols import Validator

# A report listing thousands of failures helps nobody and costs time to build.
MAX_REPORTED_ERRORS = 20


class ValidationError(Exception):
    """The data does not match the schema; ``data`` is what was validated."""

    def __init__(self, message: str, data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


def validate_data_using_schema(data: Any, schema: dict[str, Any]) -> None:
    """Raise ``ValidationError`` naming every failing place unless ``data`` matches ``schema``.

    ``data`` is a dict, a list of dicts, or a pydantic model. Besides the standard types, a schema
    may use ``"attachment"``: an ``Attachment``, or a dict with an Attachment's required fields.
    """
    plain = _plain(data)
    validator = _validator_for(schema)
    errors = sorted(validator.iter_errors(plain), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{_where(e)}: {e.message}" for e in errors[:MAX_REPORTED_ERRORS]]
        if len(errors) > MAX_REPORTED_ERRORS:
            lines.append(f"... and {len(errors) - MAX_REPORTED_ERRORS} more")
        raise ValidationError("Data validation failed:\n" + "\n".join(lines), data)


def _validator_for(schema: dict[str, Any]) -> Validator:
    import jsonschema
    from jsonschema.protocols import Validator

    try:
        base = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
        base.check_schema(_with_standard_types(schema))
    except jsonschema.SchemaError as e:
        raise ValidationError(f"Invalid schema: {e.message}", schema) from e
    checker = base.TYPE_CHECKER.redefine("attachment", _is_attachment)
    extended = cast(type[Validator], jsonschema.validators.extend(base, type_checker=checker))  # type: ignore[no-untyped-call]
    return extended(schema, format_checker=base.FORMAT_CHECKER)


def _with_standard_types(schema: Any) -> Any:
    """``schema`` with ``attachment`` read as ``object``, so the meta-schema accepts it."""
    if isinstance(schema, dict):
        return {key: _standard_type(v) if key == "type" else _with_standard_types(v) for key, v in schema.items()}
    if isinstance(schema, list):
        return [_with_standard_types(item) for item in schema]
    return schema


def _standard_type(value: Any) -> Any:
    if value == "attachment":
        return "object"
    if isinstance(value, list):
        return ["object" if item == "attachment" else item for item in value]
    return value


def _is_attachment(_checker: Any, instance: Any) -> bool:
    return isinstance(instance, Mapping) and all(isinstance(instance.get(f), str) for f in Attachment.REQUIRED_FIELDS)


def _plain(data: Any) -> Any:
    """Pydantic models and Attachments as the dicts they serialise to, at any depth."""
    dump = getattr(data, "model_dump", None)
    if callable(dump):
        return _plain(dump())
    if isinstance(data, Mapping):
        return {key: _plain(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_plain(item) for item in data]
    return data


def _where(error: jsonschema.ValidationError) -> str:
    return "$" + "".join(f"[{p!r}]" for p in error.absolute_path)
