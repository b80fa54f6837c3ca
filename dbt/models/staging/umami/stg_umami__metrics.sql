-- Umami metrics: one row per website, local day, metric type and value. `total` counts page views for path, title and
-- hostname, visits for entry and exit, and visitors for the others (referrer, channel, utm_*, browser, ...).
with source as (
  {{ clickhaul.source_or_empty("umami", "metrics", {
      "website_id": "text", "day": "date", "type": "text", "value": "text", "timezone": "text", "total": "bigint"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["website_id", "day", "type", "value"]) }})
select
  account,
  website_id as site_id,
  day,
  timezone,
  type as metric_type,
  value,
  total
from latest
