-- Matomo daily totals (VisitsSummary.get archives): one row per site and local day (in `timezone`), with the day's
-- page views from the page report. `is_final`: the archive matched the raw visit log (days before yesterday).
with source as (
  {{ clickhaul.source_or_empty("matomo", "visits_summary", {
      "site_id": "bigint", "day": "date", "timezone": "text", "nb_uniq_visitors": "bigint", "nb_visits": "bigint",
      "nb_actions": "bigint", "bounce_count": "bigint", "sum_visit_length": "bigint", "is_final": "bool"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["site_id", "day"]) }}),
pageviews as (
  select account, site_id, day, sum(views) as pageviews from {{ ref("stg_matomo__pages") }}
  group by account, site_id, day
)
select
  latest.account,
  cast(latest.site_id as varchar) as site_id,
  latest.day,
  latest.timezone,
  latest.nb_uniq_visitors as visitors,
  latest.nb_visits as visits,
  coalesce(pageviews.pageviews, 0) as pageviews,
  latest.nb_actions as actions,
  latest.bounce_count as bounces,
  latest.sum_visit_length as time_spent_seconds,
  latest.is_final
from latest
left join pageviews
  on pageviews.account = latest.account and pageviews.site_id = cast(latest.site_id as varchar)
  and pageviews.day = latest.day
