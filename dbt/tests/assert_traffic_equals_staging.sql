-- Cross-check: per vendor, the mart's visits and pageviews equal the staging totals they come from.
-- Returns the vendors whose totals differ (a passing test returns no rows).
with staged as (
  select 'pirsch' as vendor, sum(visits) as visits, sum(pageviews) as pageviews from {{ ref("stg_pirsch__visitors") }}
  union all
  select 'umami', sum(visits), sum(pageviews) from {{ ref("stg_umami__website_stats") }}
  union all
  select 'webtrekk', sum(visits), sum(pageviews) from {{ ref("stg_webtrekk__traffic_daily") }}
  union all
  select 'opentracker', count(*), sum(pageviews) from {{ ref("stg_opentracker__sessions") }}
  union all
  select 'matomo', sum(visits), sum(pageviews) from {{ ref("stg_matomo__visits_summary") }}
),
mart as (
  select vendor, sum(visits) as visits, sum(pageviews) as pageviews from {{ ref("fct_traffic_daily") }} group by vendor
)
select staged.vendor, staged.visits as staged_visits, mart.visits as mart_visits,
  staged.pageviews as staged_pageviews, mart.pageviews as mart_pageviews
from staged
left join mart on mart.vendor = staged.vendor
where coalesce(staged.visits, 0) <> coalesce(mart.visits, 0)
  or coalesce(staged.pageviews, 0) <> coalesce(mart.pageviews, 0)
