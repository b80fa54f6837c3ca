"""Running clickhaul on Airflow with dlt's Airflow helper: one DAG per source, one task per resource."""

from .dag_factory import clickhaul_dag

__all__ = ["clickhaul_dag"]
