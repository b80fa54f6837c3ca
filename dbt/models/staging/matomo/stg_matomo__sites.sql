-- One row per Matomo site.
with source as (
  {{ clickhaul.source_or_empty("matomo", "sites", {
      "site_id": "bigint", "name": "text", "main_url": "text", "timezone": "text"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["site_id"]) }})
select
  account,
  cast(site_id as varchar) as site_id,
  name as site_name,
  {{ clickhaul.url_host("main_url") }} as hostname,
  timezone
from latest
