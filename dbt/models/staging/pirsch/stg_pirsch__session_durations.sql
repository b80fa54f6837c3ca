-- Pirsch average session duration: one row per domain and local day.
with source as (
  {{ clickhaul.source_or_empty("pirsch", "session_durations", {
      "domain_id": "text", "day": "date", "average_time_spent_seconds": "bigint"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["domain_id", "day"]) }})
select
  account,
  domain_id as site_id,
  day,
  average_time_spent_seconds as avg_visit_seconds
from latest
