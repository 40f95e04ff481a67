"""The prediction log inside the real app: each answered row is journaled first, /health reports the log."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from pipelines.config import load_settings
from pipelines.lake import Lake
from pipelines.serving import predlog
from pipelines.serving.app import create_app
from tests.unit.serving.registry_helpers import NAME

ROW = {"age": 40, "x1": 0.3, "city": "a"}


def test_answered_rows_are_in_the_journal_before_any_flush_and_health_reports_the_log(store):
    environ, _, _ = store
    settings = load_settings(
        {**environ, "MLP_SERVING__LOG_FLUSH_INTERVAL_S": "3600", "MLP_SERVING__LOG_BATCH_ROWS": "100000"}
    )
    journal = settings.state_dir / predlog.JOURNAL_DIR / NAME
    lake = Lake(settings.lake_root)
    before = len(predlog.read_predictions(lake, NAME))
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        for i in range(5):
            assert client.post("/predict", json={**ROW, "unit_id": f"journal{i}"}).status_code == 200
        [segment] = journal.glob("*/*.jsonl")  # nothing flushed yet (1 h, 100k rows): the journal holds them
        assert [json.loads(line)[predlog.UNIT_ID] for line in segment.read_text().splitlines()] == [
            f"journal{i}" for i in range(5)
        ]
        health = client.get("/health").json()
        assert health["log_durability"] == "journal" and health["log_backlog"] == 5
        assert health["log_rows_dead_lettered"] == 0 and health["log_last_error"] is None
    logged = predlog.read_predictions(lake, NAME)
    assert len(logged) - before == 5 and logged[predlog.UNIT_ID].str.startswith("journal").sum() == 5
    assert list(journal.iterdir()) == []  # written at shutdown, the journal folder removed
