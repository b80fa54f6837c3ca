-- Webtrekk pages per day from the configured "Pages" analysis: one row per account day and page name. Webtrekk page
-- names are content ids ("shop/article-00223"), not URL paths; the analysis' row_limit caps how many pages a day has.
with source as (
  {{ clickhaul.source_or_empty("webtrekk", "pages", {
      "day": "date", var("clickhaul_webtrekk_page_column", "pages"): "text", "page_impressions": "double",
      "visits": "double", "visitors": "double"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["day", adapter.quote(var("clickhaul_webtrekk_page_column", "pages"))]) }})
select
  account,
  {{ clickhaul.webtrekk_site_id() }} as site_id,
  day,
  {{ adapter.quote(var("clickhaul_webtrekk_page_column", "pages")) }} as page_name,
  cast(round(page_impressions) as bigint) as views,
  cast(round(visits) as bigint) as visits,
  cast(round(visitors) as bigint) as visitors
from latest
where day is not null
