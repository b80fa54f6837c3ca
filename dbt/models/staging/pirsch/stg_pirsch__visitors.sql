-- Pirsch daily totals: one row per domain and local day (in the domain's timezone).
with source as (
  {{ clickhaul.source_or_empty("pirsch", "visitors", {
      "domain_id": "text", "day": "date", "timezone": "text", "visitors": "bigint", "views": "bigint",
      "sessions": "bigint", "bounces": "bigint"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["domain_id", "day"]) }})
select
  account,
  domain_id as site_id,
  day,
  timezone,
  visitors,
  sessions as visits,
  views as pageviews,
  bounces
from latest
