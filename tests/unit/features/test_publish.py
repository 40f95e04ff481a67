"""A date's bronze, silver and gold are published together: a failed run leaves the previous set as it was."""

import pytest

from pipelines.config import SplitSettings
from pipelines.constants import BRONZE, GOLD, SILVER
from pipelines.features import bronze, publish
from pipelines.features.bronze import QUARANTINE_BRONZE
from pipelines.features.contracts import ContractError, parse_contract
from pipelines.features.gold import build_gold
from pipelines.features.silver import QUARANTINE_SILVER, build_silver
from pipelines.lake import Lake
from tests.unit.features.helpers import DS, SPEC, land_csv

SPLIT = SplitSettings(0.7, 0.15, 0.15)
HEADER = "age,city,score,grade\n"
FIRST = HEADER + "".join(f"{i},c{i % 3},{i / 10},{'AB'[i % 2]}\n" for i in range(50))
SECOND = HEADER + "".join(f"{i},d{i % 5},{i / 4},{'AB'[i % 2]}\n" for i in range(60, 100))


def _bronze(lake, contract, text: str, batch: str) -> dict:
    """A new batch: land it (replacing the date's file), clear staging as `land` does, ingest and commit."""
    src = land_csv(lake, text)
    publish.clear_staging(lake, "people", DS)
    return bronze.commit_bronze(lake, "people", DS, [bronze.ingest_file(lake, "people", DS, src, batch, contract)])


def _run(lake, contract, text: str, batch: str, max_fraction: float = 1.0) -> dict:
    _bronze(lake, contract, text, batch)
    build_silver(lake, contract, "people", DS, max_fraction)
    return build_gold(lake, contract, "people", DS, SPLIT, seed=7)


def _published(lake: Lake) -> dict:
    """The published manifests of the date, after checking that each layer was built from the one before."""
    m = {layer: lake.read_manifest(layer, "people", DS) for layer in (BRONZE, SILVER, GOLD)}
    assert m[SILVER]["bronze_content_hash"] == m[BRONZE]["content_hash"]
    assert m[GOLD]["silver_content_hash"] == m[SILVER]["content_hash"]
    assert m[BRONZE]["rows_in"] == m[GOLD]["rows"] + sum(
        lake.read_manifest(q, "people", DS)["rows"] for q in (QUARANTINE_BRONZE, QUARANTINE_SILVER)
    )
    return m


def _hashes(m: dict) -> dict:
    return {layer: manifest["content_hash"] for layer, manifest in m.items()}


def test_a_run_that_fails_in_silver_leaves_the_published_set_as_it_was_and_a_rerun_succeeds(lake, contract):
    _run(lake, contract, FIRST, "run-1")
    first = _hashes(_published(lake))
    # Second batch: bronze is committed, then silver refuses it (too many rows break the contract).
    mostly_bad = SECOND + "".join(f"x{i},d,1,A\n" for i in range(100))
    staged = _bronze(lake, contract, mostly_bad, "run-2")
    with pytest.raises(ContractError, match="keeps its previous bronze, silver and gold"):
        build_silver(lake, contract, "people", DS, 0.2)
    assert _hashes(_published(lake)) == first  # bronze is not the failed batch's: the set still agrees
    assert lake.read_manifest(BRONZE, "people", DS, staged=True)["content_hash"] == staged["content_hash"]

    # The rerun with the batch fixed publishes the new set, and leaves nothing in staging.
    _run(lake, contract, SECOND, "run-3", max_fraction=0.2)
    second = _hashes(_published(lake))
    assert all(second[layer] != first[layer] for layer in first)
    assert not any(lake.exists(lake.staging(layer, "people", DS)) for layer in publish.LAYERS)


def test_a_run_that_fails_in_gold_publishes_nothing(lake, contract):
    _run(lake, contract, FIRST, "run-1")
    first = _hashes(_published(lake))
    _bronze(lake, contract, SECOND, "run-2")
    build_silver(lake, contract, "people", DS, 1.0)
    unlabelled = parse_contract({**SPEC, "gold": {}})
    with pytest.raises(ContractError, match="no gold.label"):
        build_gold(lake, unlabelled, "people", DS, SPLIT, seed=7)
    assert _hashes(_published(lake)) == first


def test_a_gold_killed_while_publishing_is_finished_by_its_retry(lake, contract, monkeypatch):
    _run(lake, contract, FIRST, "run-1")
    _bronze(lake, contract, SECOND, "run-2")
    build_silver(lake, contract, "people", DS, 1.0)
    publish_staged, calls = Lake.publish_staged, []

    def dies_after_bronze(self, layer, dataset, ds):
        if layer == QUARANTINE_SILVER:
            raise KeyboardInterrupt("killed")  # what a SIGKILL leaves: bronze published, the rest not
        calls.append(layer)
        return publish_staged(self, layer, dataset, ds)

    monkeypatch.setattr(Lake, "publish_staged", dies_after_bronze)
    with pytest.raises(KeyboardInterrupt):
        build_gold(lake, contract, "people", DS, SPLIT, seed=7)
    assert calls == [QUARANTINE_BRONZE, BRONZE]
    monkeypatch.setattr(Lake, "publish_staged", publish_staged)
    retried = build_gold(lake, contract, "people", DS, SPLIT, seed=7)  # the task's retry
    assert _published(lake)[GOLD]["content_hash"] == retried["content_hash"]
    assert _published(lake)[BRONZE]["rows"] == 40


def test_gold_rebuilt_alone_publishes_only_gold(lake, contract):
    _run(lake, contract, FIRST, "run-1")
    before = _hashes(_published(lake))
    # A failed second batch is left in staging; rebuilding gold from the published silver must not publish it.
    _bronze(lake, contract, SECOND, "run-2")
    build_gold(lake, contract, "people", DS, SPLIT, seed=7)
    assert _hashes(_published(lake)) == before
    assert lake.has_staged(BRONZE, "people", DS)
