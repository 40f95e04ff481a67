"""The request schema of a served model: one strict pydantic model per signature.

Every feature is required (null allowed: the pipelines impute), extra keys are refused, ``unit_id``
is optional. A number feature takes a JSON number (finite; an integer feature within int64), text
must be valid Unicode: a value is scored as sent or refused, never reinterpreted.
"""

from __future__ import annotations

from typing import Any

from pipelines.serving.errors import ModelNotFound

UNIT_ID = "unit_id"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _integral(value):
    """A float with no fractional part (40.0, as pandas writes an integer column with gaps) is that integer."""
    return int(value) if type(value) is float and value.is_integer() else value


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone surrogate (\\ud800, which JSON escapes allow and UTF-8 cannot encode), else None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def _text(value: str) -> str:
    """Text that UTF-8 can encode: a lone surrogate would poison the log and the frame."""
    pos = lone_surrogate(value)
    if pos is not None:
        from pydantic_core import PydanticCustomError

        raise PydanticCustomError(
            "string_unicode",
            "text with a lone surrogate ({char}) at position {pos} is not valid Unicode: send UTF-8 text",
            {"char": ascii(value[pos]), "pos": pos},
        )
    return value


def _field_types() -> dict[str, Any]:
    """Request types per signature type: strict, finite, int64, valid Unicode."""
    from typing import Annotated

    from pydantic import AfterValidator, BeforeValidator, Field

    number = Annotated[float, Field(allow_inf_nan=False)]
    integer = Annotated[int, BeforeValidator(_integral), Field(ge=INT64_MIN, le=INT64_MAX)]
    text = Annotated[str, AfterValidator(_text)]
    types = {"double": number, "float": number, "long": integer, "integer": integer, "boolean": bool, "string": text}
    return {**types, "any": text | integer | number | bool}


def request_model(name: str, columns: list[tuple[str, str]]):
    """A pydantic model of one request row: each feature required (nullable) with its type, extra keys refused."""
    from pydantic import ConfigDict, Field, create_model

    types = _field_types()
    fields: dict[str, Any] = {}
    for i, (column, kind) in enumerate(columns):
        fields[f"f{i}"] = (types.get(kind, types["any"]) | None, Field(..., alias=column))
    fields["unit_id_"] = (types["string"] | int | None, Field(None, alias=UNIT_ID))
    return create_model(
        f"{name}_row",
        __config__=ConfigDict(extra="forbid", strict=True, populate_by_name=False),
        **fields,
    )


def signature_columns(model_uri: str, signature) -> list[tuple[str, str]]:
    """(feature, type) of the model's input signature (``Model.signature`` of ``model_uri``)."""
    if signature is None or signature.inputs is None:
        raise ModelNotFound(f"{model_uri} has no signature: log the model with one (see training.run._log_model)")
    cols = []
    for spec in signature.inputs.inputs:
        kind = getattr(spec.type, "name", str(spec.type))
        cols.append((spec.name, str(kind)))
    return cols
