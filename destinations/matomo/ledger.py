"""The Matomo destination's ledger: the shared one (`destinations.common.ledger`) in schema `matomo`, tables
`matomo_ledger`, `matomo_ledger_hits`, `matomo_ledger_in_flight` and `matomo_rejected`."""

from __future__ import annotations

from destinations.common.ledger import Acknowledgement, Flight, Ledger, LedgerTables, Rejection

from .settings import LEDGER_BATCHES_TABLE, LEDGER_HITS_TABLE, LEDGER_IN_FLIGHT_TABLE, LEDGER_SCHEMA, REJECTED_TABLE

TABLES = LedgerTables(LEDGER_SCHEMA)
assert (TABLES.batches, TABLES.hits, TABLES.in_flight, TABLES.rejected) == (
    LEDGER_BATCHES_TABLE,
    LEDGER_HITS_TABLE,
    LEDGER_IN_FLIGHT_TABLE,
    REJECTED_TABLE,
), "the Matomo ledger's table names are public: they must not change"

__all__ = ["TABLES", "Acknowledgement", "Flight", "Ledger", "LedgerTables", "Rejection"]
