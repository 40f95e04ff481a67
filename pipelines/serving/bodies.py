"""Request bodies of the prediction API: read (JSON only, size and time limits), parsed, and validated
row by row against the served model's schema and data contract; every problem is an HTTP error naming
its row and field (``loc``), like FastAPI's own validation.
"""

from __future__ import annotations

import asyncio
import json
import math

from fastapi import HTTPException, Request

from pipelines.serving.schema import lone_surrogate

# A 408 closes the connection (the body is half read; the client reconnects instead of meeting a reset). A 413
# keeps it: uvicorn reads and drops the rest of the body, so the client still gets its answer.
CLOSE = {"Connection": "close"}
_MAX_ERRORS = 100  # a 422 lists at most this many problems


async def read_body(request: Request, cfg) -> bytes:
    """The raw body: JSON only (415), at most ``max_body_bytes`` (413), all of it within ``body_timeout_s`` (408).

    Requiring ``Content-Type: application/json`` also makes a browser preflight any cross-origin
    POST, which the CORS policy then refuses: a ``text/plain`` form post from another site never runs.
    """
    from starlette.requests import ClientDisconnect

    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise HTTPException(
            415, f"send the rows as JSON with Content-Type: application/json (got {media or 'no Content-Type'!r})"
        )
    limit = cfg.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(
            413, f"request body of {declared} bytes is over the limit of {limit} bytes (serving.max_body_bytes)"
        )
    body = bytearray()
    try:
        async with asyncio.timeout(cfg.body_timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise HTTPException(
                        413, f"request body is over the limit of {limit} bytes (serving.max_body_bytes)"
                    )
    except TimeoutError:
        raise HTTPException(
            408, f"the request body did not arrive within {cfg.body_timeout_s:g} s (serving.body_timeout_s)", CLOSE
        ) from None
    except ClientDisconnect:
        raise HTTPException(400, "the client disconnected before sending the whole body", CLOSE) from None
    return bytes(body)


def _parse_int(text: str):
    """A JSON integer longer than any int64 (20 characters) is read as a float: a 5,000-digit number then
    fails its field's range check instead of Python's limit on parsing integers."""
    return int(text) if len(text) <= 20 else float(text)


def parse_body(body: bytes):
    """The body's JSON (400 if it is not JSON). NaN, Infinity and 1e400 parse to floats the row validation refuses."""
    try:
        return json.loads(body, parse_int=_parse_int)
    except RecursionError:
        raise HTTPException(400, "request body is nested too deeply: send a row object or a list of them") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise HTTPException(400, f"request body is not valid JSON: {echo(str(exc))}") from None


def echo(value):
    """A value as an error message can show it: text cut short with lone surrogates escaped, non-finite numbers
    and containers by name (a 422 must render whatever the request held)."""
    if isinstance(value, str):
        return value[:200].encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return {list: "a JSON array", dict: "a JSON object"}.get(type(value), type(value).__name__)


def row_loc(i: int, is_list: bool) -> list:
    return ["body", i] if is_list else ["body"]


def _capped(errors: list[dict]) -> list[dict]:
    if len(errors) <= _MAX_ERRORS:
        return errors
    more = {"loc": ["body"], "msg": f"{len(errors) - _MAX_ERRORS} more problems not listed", "type": "too_many_errors"}
    return [*errors[:_MAX_ERRORS], more]


def _row_errors(exc, item: dict, at: list) -> list[dict]:
    """pydantic's errors for one row, each at [body, (row,) field], deduplicated (a union reports each member)."""
    out, seen = [], set()
    for e in exc.errors(include_url=False, include_context=False):
        if not e["loc"]:  # a field name pydantic cannot read: a lone surrogate in a key
            bad = [k for k in item if lone_surrogate(k) is not None]
            msg = "field name with a lone surrogate is not valid Unicode: send UTF-8 text"
            out += [{"loc": [*at, echo(k)], "msg": msg, "type": "string_unicode"} for k in bad]
            continue
        entry = {"loc": [*at, echo(e["loc"][0])], "msg": e["msg"], "type": e["type"], "input": echo(e.get("input"))}
        key = (str(entry["loc"]), entry["msg"])
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def validate_rows(served, payload, max_rows: int, many_ok: bool = True) -> tuple[list[dict], bool]:
    """Rows validated against the served model's schema (alias keys), and whether a list was sent."""
    from pydantic import ValidationError

    is_list = isinstance(payload, list)
    if is_list and not many_ok:
        raise HTTPException(422, [{"loc": ["body"], "msg": "send one row object, not a list", "type": "type_error"}])
    items = payload if is_list else [payload]
    if is_list and not items:
        raise HTTPException(422, [{"loc": ["body"], "msg": "the list of rows is empty", "type": "value_error"}])
    if len(items) > max_rows:
        raise HTTPException(
            413, f"{len(items)} rows in one request, over serving.max_rows_per_request ({max_rows}): split the batch"
        )
    rows, errors = [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            msg = "a row must be a JSON object of feature: value"
            errors.append({"loc": row_loc(i, is_list), "msg": msg, "type": "type_error", "input": echo(item)})
            continue
        try:
            rows.append(served.request_model.model_validate(item).model_dump(by_alias=True))
        except ValidationError as exc:
            errors += _row_errors(exc, item, row_loc(i, is_list))
    if errors:
        raise HTTPException(422, _capped(errors))
    return rows, is_list


def check_contract(models: dict, rows: list[dict], aliases: list[str], policy: str, is_list: bool) -> list[list]:
    """Per row, the contract rules it breaks ({field, rule, msg}; by the model serving it); ``reject``: a 422."""
    if policy == "off":
        return [[] for _ in rows]
    found = [
        [{"field": f, "rule": r, "msg": m} for f, r, m in models[alias].violations(row)]
        for row, alias in zip(rows, aliases, strict=True)
    ]
    if policy == "reject" and any(found):
        errors = [
            {"loc": [*row_loc(i, is_list), v["field"]], "msg": v["msg"], "type": f"contract_{v['rule']}"}
            | {"input": echo(rows[i].get(v["field"]))}
            for i, row_violations in enumerate(found)
            for v in row_violations
        ]
        raise HTTPException(422, _capped(errors))
    return found
