-- One row per Umami website (site).
with source as (
  {{ clickhaul.source_or_empty("umami", "websites", {
      "id": "text", "name": "text", "domain": "text", "created_at": "timestamp"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["id"]) }})
select
  account,
  id as site_id,
  domain as hostname,
  name as site_name,
  created_at
from latest
