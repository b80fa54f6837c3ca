-- Umami daily totals: one row per website and local day (in `timezone`).
with source as (
  {{ clickhaul.source_or_empty("umami", "website_stats", {
      "website_id": "text", "day": "date", "timezone": "text", "pageviews": "bigint", "visitors": "bigint",
      "visits": "bigint", "bounces": "bigint", "totaltime": "bigint"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["website_id", "day"]) }})
select
  account,
  website_id as site_id,
  day,
  timezone,
  visitors,
  visits,
  pageviews,
  bounces,
  totaltime as time_spent_seconds
from latest
