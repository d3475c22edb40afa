"""Keying: link places seen online to the enterprise register, explainably.

Pure pipeline (plain records in, decisions out):

    records.prepare_listing / prepare_unit   normalised, comparison-ready records
    consolidate.consolidate                  listings of one business -> one place
    blocking.block                           one streaming pass over the register -> candidates
    engine.key_places                        grades, Fellegi-Sunter weights by EM, decisions
    evaluate.evaluate                        precision / recall / doubt / blocking recall

Store edges: `store_io.key_region` (what `horeca key` runs) and `evaluate.evaluate_store`
(`horeca evaluate`). Settings: `config.load_config` (keying.toml). How it decides:
docs/methodology.md.
"""

from horeca.keying.config import DEFAULT_CONFIG, KeyingConfig, load_config
from horeca.keying.engine import Decision, KeyingRun, Labels, key_places

__all__ = ["DEFAULT_CONFIG", "Decision", "KeyingConfig", "KeyingRun", "Labels", "key_places",
           "load_config"]
