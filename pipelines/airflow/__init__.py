"""Running clickhaul on Airflow with dlt's Airflow helper: a DAG per source (a task group per account, one task per
resource), and a backfill DAG per source (per account, one mapped task per window, in a pool per vendor login)."""

from .dag_factory import clickhaul_backfill_dag, clickhaul_dag, ensure_pools

__all__ = ["clickhaul_backfill_dag", "clickhaul_dag", "ensure_pools"]
