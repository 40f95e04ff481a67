"""Hostile requests against the prediction API on a real uvicorn server: each one gets a 4xx naming the
field, the keep-alive connection keeps serving, and a fuzzer over the OpenAPI schema finds no 5xx.

The helpers here (``uvicorn_server``, ``hostile_requests``, ``fuzz``) are also what
bench/reliability_requests.py runs, with more requests.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import strategies as st

from pipelines.config import load_settings
from pipelines.serving.app import create_app
from tests.unit.serving.registry_helpers import NAME

ROW = {"age": 40, "x1": 0.3, "city": "a"}
MAX_ROWS = 100  # serving.max_rows_per_request in these tests


@contextmanager
def uvicorn_server(app, **config) -> Iterator[str]:
    """The app on uvicorn (a real socket, in a thread with its own event loop); yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start: see the log above")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


@pytest.fixture(scope="module")
def api(store):
    """(host, port, settings) of the API serving the toy champion on uvicorn."""
    environ, _, _ = store
    settings = load_settings(
        {
            **environ,
            "MLP_SERVING__MAX_ROWS_PER_REQUEST": str(MAX_ROWS),
            "MLP_SERVING__BODY_TIMEOUT_S": "0.5",
            "MLP_SERVING__MAX_BODY_BYTES": "200000",
        }
    )
    with uvicorn_server(create_app(settings)) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port), settings


def _post(conn: http.client.HTTPConnection, body: str | bytes, path: str = "/predict", **headers):
    headers = {"Content-Type": "application/json", **headers}
    conn.request("POST", path, body=body.encode() if isinstance(body, str) else body, headers=headers)
    response = conn.getresponse()
    return response.status, response.getheader("connection"), json.loads(response.read() or b"null")


def _row(**values: str) -> str:
    """ROW as JSON text with some values replaced by raw JSON text (NaN, escapes, 5,000-digit numbers)."""
    parts = {k: json.dumps(v) for k, v in ROW.items()} | values
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in parts.items()) + "}"


HOSTILE_VALUES = [  # (name, row text, the field a 422 must name)
    ("nan", _row(x1="NaN"), "x1"),
    ("infinity", _row(x1="Infinity"), "x1"),
    ("minus infinity", _row(x1="-Infinity"), "x1"),
    ("1e400", _row(x1="1e400"), "x1"),
    ("5000-digit float feature", _row(x1="9" * 5000), "x1"),
    ("5000-digit integer feature", _row(age="9" * 5000), "age"),
    ("integer above int64", _row(age=str(2**63)), "age"),
    ("integer below int64", _row(age=str(-(2**63) - 1)), "age"),
    ("true for an integer", _row(age="true"), "age"),
    ("true for a float", _row(x1="true"), "x1"),
    ("a number as text", _row(x1='"0.3"'), "x1"),
    ("a fractional integer", _row(age="40.5"), "age"),
    ("lone surrogate value", _row(city='"\\ud800"'), "city"),
    ("lone surrogate unit_id", _row(unit_id='"u\\udfff"'), "unit_id"),
    ("lone surrogate key", _row(**{"\ud800": "1"}), "\\ud800"),
    ("nested array value", _row(x1="[" * 200 + "]" * 200), "x1"),
    ("object value", _row(city='{"a": 1}'), "city"),
    ("unknown key", _row(colour='"red"'), "colour"),
]


@pytest.mark.parametrize(("name", "row", "field"), HOSTILE_VALUES, ids=[h[0] for h in HOSTILE_VALUES])
def test_hostile_values_get_422_naming_row_and_field(api, name, row, field):
    host, port, _ = api
    conn = http.client.HTTPConnection(host, port, timeout=30)
    status, _, body = _post(conn, row)
    assert status == 422, body
    assert [e for e in body["detail"] if e["loc"] == ["body", field]], body
    # Row 69 of a 70-row batch: past the fast path's 64 rows, scored (had it passed) by the pipeline in a thread.
    status, _, body = _post(conn, "[" + ",".join([json.dumps(ROW)] * 69 + [row]) + "]")
    assert status == 422, body
    assert {tuple(e["loc"]) for e in body["detail"]} == {("body", 69, field)}, body
    status, _, body = _post(conn, row, path="/explain")
    assert status == 422 and [e for e in body["detail"] if e["loc"] == ["body", field]], body


def test_bad_bodies_get_4xx_and_the_connection_keeps_serving(api):
    host, port, _ = api
    conn = http.client.HTTPConnection(host, port, timeout=30)
    assert _post(conn, json.dumps(ROW))[0] == 200
    first_socket = conn.sock
    cases = [
        ("[" * 100_000 + "]" * 100_000, 400, "nested too deeply"),
        ("{not json", 400, "not valid JSON"),
        (b'{"city": "\xff"}', 400, "not valid JSON"),
        ("[]", 422, "empty"),
        ('[1, "row"]', 422, "JSON object"),
        (json.dumps([ROW] * (MAX_ROWS + 1)), 413, "serving.max_rows_per_request"),
        (json.dumps([ROW, ROW]), 422, "not a list"),  # /explain takes one row
    ]
    for i, (body, status, words) in enumerate(cases):
        got, connection, answer = _post(conn, body, path="/explain" if i == len(cases) - 1 else "/predict")
        assert got == status and words in json.dumps(answer), (status, answer)
        assert connection is None and conn.sock is first_socket  # the same keep-alive connection
    for value, _field in [(r, f) for _, r, f in HOSTILE_VALUES]:
        assert _post(conn, value)[0] == 422
        assert conn.sock is first_socket
    status, _, answer = _post(conn, json.dumps({**ROW, "unit_id": 2**63}))
    assert status == 200 and answer["predictions"][0]["unit_id"] == str(2**63)  # unit ids are text: normalised
    assert conn.sock is first_socket


def test_wrong_content_type_is_415_before_the_body_is_read(api):
    host, port, _ = api
    conn = http.client.HTTPConnection(host, port, timeout=30)
    status, _, body = _post(conn, json.dumps(ROW), **{"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in body["detail"]
    assert _post(conn, json.dumps(ROW), **{"Content-Type": "application/json; charset=utf-8"})[0] == 200


def test_an_oversized_body_keeps_the_connection_and_a_slow_one_closes_it(api):
    host, port, settings = api
    conn = http.client.HTTPConnection(host, port, timeout=30)
    assert _post(conn, json.dumps(ROW))[0] == 200
    first_socket = conn.sock
    status, connection, body = _post(conn, json.dumps([ROW] * 10_000))  # 370 kB, over the 200 kB limit
    assert status == 413 and connection is None and "serving.max_body_bytes" in body["detail"]
    assert _post(conn, json.dumps(ROW))[0] == 200 and conn.sock is first_socket  # uvicorn dropped the rest
    # A client that announces 100 bytes and sends 10: a 408 once serving.body_timeout_s has passed.
    with socket.create_connection((host, port), timeout=30) as raw:
        head = (
            f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        raw.sendall(head.encode() + b'{"age": 40')
        reply = raw.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 408") and "connection: close" in reply.lower(), reply
    assert "serving.body_timeout_s" in reply and settings.serving.body_timeout_s == 0.5


def test_foreign_hosts_and_origins_are_refused(api, store):
    from fastapi.testclient import TestClient

    host, port, _ = api
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/model", headers={"Host": "attacker.example"})  # DNS rebinding: a name we do not serve
    assert conn.getresponse().status == 400
    preflight = {"Origin": "https://attacker.example", "Access-Control-Request-Method": "POST"}
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("OPTIONS", "/predict", headers={**preflight, "Access-Control-Request-Headers": "content-type"})
    response = conn.getresponse()
    assert response.status == 400 and response.getheader("access-control-allow-origin") is None
    # A configured origin and host name are allowed.
    environ, _, _ = store
    settings = load_settings(
        {
            **environ,
            "MLP_SERVING__CORS_ORIGINS": "[https://app.example]",
            "MLP_SERVING__ALLOWED_HOSTS": "[api.example]",
        }
    )
    with TestClient(create_app(settings), base_url="http://api.example") as client:
        ok = client.options("/predict", headers={**preflight, "Origin": "https://app.example"})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example"
        assert client.post("/predict", json=ROW, headers={"Origin": "https://app.example"}).status_code == 200
        assert client.get("/model", headers={"Host": "localhost"}).status_code == 200


def test_an_unexpected_error_is_a_500_with_a_request_id_and_connection_close(caplog):
    from starlette.testclient import TestClient

    from pipelines.serving.app import _ServerErrors

    async def broken(scope, receive, send):
        raise RuntimeError("a bug")

    with caplog.at_level("ERROR"):
        response = TestClient(_ServerErrors(broken), raise_server_exceptions=False).get("/anything")
    assert response.status_code == 500 and response.headers["connection"] == "close"
    request_id = response.json()["request_id"]
    assert request_id in response.json()["detail"] and request_id in caplog.text and "a bug" in caplog.text


# -- the fuzzer ---------------------------------------------------------------------------------


class Raw(str):
    """JSON text sent as it is (NaN, 1e400, a 5,000-digit number, deep nesting, escapes)."""


def dump(value) -> str:
    """JSON text of rows that may hold Raw values; keys and strings with lone surrogates as \\u escapes."""
    if isinstance(value, Raw):
        return value
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


_RAW_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", '"\\ud800"', '"a\\udfffb"']
_RAW_TOKENS += ['"\\ud83d\\ude00"', '"\\u0000"', '"40"', "true", "false", "null", "{}", "[]", '{"a": [1]}']


def hostile_requests(features: dict[str, str]) -> st.SearchStrategy[tuple[str, dict, bytes]]:
    """(path, headers, body) with hostile values, keys, shapes and content types: what a schema-driven
    fuzzer cannot write (NaN, lone surrogates, 5,000-digit numbers, depth) next to valid rows."""
    valid = {
        "long": st.integers(-(10**6), 10**6),
        "integer": st.integers(-(10**6), 10**6),
        "double": st.floats(-1e6, 1e6),
        "float": st.floats(-1e6, 1e6),
        "boolean": st.booleans(),
        "string": st.sampled_from(["a", "b", "c", "zz", ""]) | st.text(max_size=8),
    }
    row = st.fixed_dictionaries({c: valid.get(t, st.text(max_size=8)) | st.none() for c, t in features.items()})
    hostile = st.one_of(
        st.sampled_from(_RAW_TOKENS).map(Raw),
        st.integers(19, 6000).map(lambda n: Raw("9" * n)),
        st.integers(1, 3000).map(lambda d: Raw("[" * d + "]" * d)),
        st.integers(-(2**80), 2**80),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    )
    key = st.sampled_from([*features, "unit_id", "\ud800", "", "colour"]) | st.text(max_size=6)

    @st.composite
    def poisoned(draw):
        out = draw(row)
        for _ in range(draw(st.integers(0, 3))):
            out[draw(key)] = draw(hostile)
        if draw(st.booleans()) and out:
            del out[draw(st.sampled_from(sorted(out)))]
        return out

    rows = poisoned() | row
    body = st.one_of(
        rows,
        st.lists(rows, min_size=1, max_size=3),
        st.tuples(rows, st.integers(60, 150)).map(lambda t: [t[0]] * t[1]),  # around the fast path's 64 rows
        hostile,
        st.binary(max_size=64).map(lambda b: Raw(b.decode("latin-1"))),
    )
    content_type = st.sampled_from(
        ["application/json"] * 6 + ["application/json; charset=utf-8", "text/plain", "", "application/x-www-form"]
    )

    def request(path: str, ctype: str, value) -> tuple[str, dict, bytes]:
        headers = {"Content-Type": ctype} if ctype else {}
        return path, headers, dump(value).encode("utf-8", "surrogatepass")

    return st.builds(request, st.sampled_from(["/predict", "/predict", "/explain"]), content_type, body)


def fuzz(base_url: str, examples: int, seed: int = 0) -> dict:
    """Send ``examples`` generated requests over one keep-alive session: schemathesis cases from the API's
    OpenAPI schema (positive and negative) and ``hostile_requests``. Returns the counts by status and up to
    10 requests that got a 5xx or broke the connection."""
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from schemathesis.generation.modes import GenerationMode

    session = requests.Session()
    schema = session.get(f"{base_url}/openapi.json", timeout=30).json()
    features = {f["name"]: f["type"] for f in session.get(f"{base_url}/model", timeout=30).json()["features"]}
    loaded = schemathesis.openapi.from_dict(schema)
    from_schema = loaded.as_strategy(GenerationMode.POSITIVE) | loaded.as_strategy(GenerationMode.NEGATIVE)
    statuses: Counter = Counter()
    failures: list[dict] = []

    def send(case) -> None:
        if isinstance(case, tuple):
            path, headers, body = case
            kwargs = {"method": "POST", "url": base_url + path, "headers": headers, "data": body}
        else:
            kwargs = case.as_transport_kwargs(base_url=base_url)
        try:
            response = session.request(**kwargs, timeout=60)
        except (requests.exceptions.InvalidHeader, ValueError, UnicodeError):
            statuses["not sendable"] += 1  # the client refused it (a header HTTP cannot carry): never reached us
            return
        except requests.exceptions.ConnectionError as exc:
            statuses["connection error"] += 1
            failures.append({"request": _describe(kwargs), "error": repr(exc)[:300]})
            return
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append({"request": _describe(kwargs), "status": response.status_code, "body": response.text[:300]})

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(from_schema, hostile_requests(features)))
    def run(case) -> None:
        send(case)

    run()
    server_errors = sum(n for s, n in statuses.items() if isinstance(s, int) and s >= 500)
    return {
        "requests": sum(statuses.values()),
        "server_errors_5xx": server_errors,
        "connection_errors": statuses["connection error"],
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "failures": failures[:10],
    }


def _describe(kwargs: dict) -> str:
    body = kwargs.get("data") or kwargs.get("json")
    return f"{kwargs['method']} {kwargs['url']} {kwargs.get('headers')} {str(body)[:200]}"


def test_a_fuzzer_over_the_schema_and_hostile_bodies_finds_no_5xx(store):
    environ, _, _ = store
    settings = load_settings({**environ, "MLP_SERVING__MAX_ROWS_PER_REQUEST": str(MAX_ROWS)})
    with uvicorn_server(create_app(settings)) as url:
        found = fuzz(url, examples=300, seed=1)
    assert found["requests"] >= 250, found
    assert found["server_errors_5xx"] == 0 and found["connection_errors"] == 0, found["failures"]
    assert found["statuses"].get("200", 0) > 10 and found["statuses"].get("422", 0) > 10, found["statuses"]


def test_model_describes_types_and_no_contract_for_an_untagged_version(api):
    host, port, _ = api
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/model")
    info = json.loads(conn.getresponse().read())
    assert info["name"] == NAME and info["contract"].startswith("none: ") and "dataset" in info["contract"]
    assert info["contract_policy"] == "flag"
