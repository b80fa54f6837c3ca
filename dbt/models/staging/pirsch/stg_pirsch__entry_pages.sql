-- Pirsch entry pages: one row per domain, local day, path and title.
with source as (
  {{ clickhaul.source_or_empty("pirsch", "entry_pages", {
      "domain_id": "text", "day": "date", "path": "text", "title": "text", "visitors": "bigint", "entries": "bigint"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["domain_id", "day", "path", "title"]) }})
select
  account,
  domain_id as site_id,
  day,
  path,
  title as page_title,
  entries,
  visitors
from latest
