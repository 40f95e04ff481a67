"""Names shared across the platform: layers, metadata columns, splits, aliases, seeds."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
INCLUDE_DIR = REPO_ROOT / "include"
CONFIG_DIR = INCLUDE_DIR / "config"
CONTRACTS_DIR = CONFIG_DIR / "contracts"

# Medallion layers and side tables in the lake.
LANDING, BRONZE, SILVER, GOLD, QUARANTINE = "landing", "bronze", "silver", "gold", "quarantine"
STAGING = "_staging"
MANIFEST_FILE = "_manifest.json"

# Metadata columns added by the platform (leading underscore = not a feature).
INGESTED_AT = "_ingested_at"
SOURCE_FILE = "_source_file"
BATCH_ID = "_batch_id"
ROW_NUMBER = "_row_number"
ROW_ID = "_row_id"
REASON = "_reason"
STAGE = "_stage"
RAW = "_raw"
LABEL = "label"
SPLIT = "split"
TRAIN, VALID, TEST = "train", "valid", "test"

# MLflow registry aliases.
CHAMPION, CHALLENGER = "champion", "challenger"

DEFAULT_SEED = 42

# Canonical columns of rating data in the recommendation package and its gold outputs.
USER_ID, ITEM_ID, RATING, TIMESTAMP = "user_id", "item_id", "rating", "timestamp"
