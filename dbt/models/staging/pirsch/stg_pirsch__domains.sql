-- One row per Pirsch domain (site).
with source as (
  {{ clickhaul.source_or_empty("pirsch", "domains", {
      "id": "text", "hostname": "text", "subdomain": "text", "timezone": "text", "def_time": "timestamp"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["id"]) }})
select
  account,
  id as site_id,
  hostname,
  subdomain as site_name,
  timezone,
  def_time as created_at
from latest
