-- Pirsch pages: one row per domain, local day, path and title (domains with group_by_title split a path by title).
with source as (
  {{ clickhaul.source_or_empty("pirsch", "pages", {
      "domain_id": "text", "day": "date", "path": "text", "title": "text", "visitors": "bigint", "views": "bigint",
      "sessions": "bigint", "bounces": "bigint", "average_time_spent_seconds": "bigint"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["domain_id", "day", "path", "title"]) }})
select
  account,
  domain_id as site_id,
  day,
  path,
  title as page_title,
  views,
  visitors,
  sessions as visits,
  bounces,
  average_time_spent_seconds as avg_time_on_page_seconds
from latest
