-- Webtrekk daily totals from the configured "Days" analysis: one row per account day. Metrics arrive as numbers
-- (double); counts are rounded to integers here. Columns the analysis does not have are NULL.
with source as (
  {{ clickhaul.source_or_empty("webtrekk", "traffic", {
      "day": "date", "page_impressions": "double", "visits": "double", "visitors": "double", "bounces": "double",
      "visit_duration": "double"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["day"]) }})
select
  account,
  {{ clickhaul.webtrekk_site_id() }} as site_id,
  day,
  cast(round(visitors) as bigint) as visitors,
  cast(round(visits) as bigint) as visits,
  cast(round(page_impressions) as bigint) as pageviews,
  cast(round(bounces) as bigint) as bounces,
  visit_duration as avg_visit_seconds
from latest
where day is not null
