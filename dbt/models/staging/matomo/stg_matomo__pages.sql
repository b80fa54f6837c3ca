-- Matomo pages per site, local day and URL path (Actions.getPageUrls, flat). A report cut at Matomo's row limit has
-- an "Others" row and `is_truncated` on all its rows.
with source as (
  {{ clickhaul.source_or_empty("matomo", "pages", {
      "site_id": "bigint", "day": "date", "path": "text", "nb_hits": "bigint", "nb_visits": "bigint",
      "nb_uniq_visitors": "bigint", "entry_nb_visits": "bigint", "exit_nb_visits": "bigint",
      "is_truncated": "bool"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["site_id", "day", "path"]) }})
select
  account,
  cast(site_id as varchar) as site_id,
  day,
  path,
  nb_hits as views,
  nb_visits as visits,
  nb_uniq_visitors as visitors,
  entry_nb_visits as entries,
  exit_nb_visits as exits,
  is_truncated
from latest
