import pytest

from pipelines.features.contracts import parse_contract
from pipelines.lake import Lake
from tests.unit.features.helpers import SPEC


@pytest.fixture
def lake(tmp_path):
    return Lake(tmp_path.joinpath("lake").as_uri())


@pytest.fixture
def contract():
    return parse_contract(SPEC)
