-- Daily traffic per vendor, account and site. Grain: one row per vendor, account, site_id and day (the vendor's
-- local day).
-- visitors, bounce_rate, avg_visit_seconds and pageviews_per_visit are NOT additive: never sum them across days or
-- sites; sum visits, pageviews, bounces and time_spent_seconds instead and divide.
with pirsch as (
  select
    cast('pirsch' as varchar) as vendor,
    visitors.account,
    visitors.site_id,
    visitors.day,
    visitors.timezone,
    visitors.visitors,
    visitors.visits,
    visitors.pageviews,
    visitors.bounces,
    cast(durations.avg_visit_seconds * visitors.visits as double precision) as time_spent_seconds
  from {{ ref("stg_pirsch__visitors") }} as visitors
  left join {{ ref("stg_pirsch__session_durations") }} as durations
    on durations.account = visitors.account and durations.site_id = visitors.site_id
    and durations.day = visitors.day
),
umami as (
  select
    cast('umami' as varchar) as vendor,
    account,
    site_id,
    day,
    timezone,
    visitors,
    visits,
    pageviews,
    bounces,
    cast(time_spent_seconds as double precision) as time_spent_seconds
  from {{ ref("stg_umami__website_stats") }}
),
webtrekk as (
  select
    cast('webtrekk' as varchar) as vendor,
    account,
    site_id,
    day,
    cast(null as varchar) as timezone,
    visitors,
    visits,
    pageviews,
    bounces,
    cast(avg_visit_seconds * visits as double precision) as time_spent_seconds
  from {{ ref("stg_webtrekk__traffic_daily") }}
),
opentracker as (
  select
    cast('opentracker' as varchar) as vendor,
    account,
    site_id,
    day,
    cast(null as varchar) as timezone,
    count(distinct visitor_id) as visitors,
    count(*) as visits,
    sum(pageviews) as pageviews,
    sum(case when is_bounce then 1 else 0 end) as bounces,
    sum(duration_seconds) as time_spent_seconds
  from {{ ref("fct_sessions") }}
  where vendor = 'opentracker'
  group by account, site_id, day
),
matomo as (
  -- Matomo's archived daily totals; page views from its page report (see stg_matomo__visits_summary).
  select cast('matomo' as varchar) as vendor, account, site_id, day, timezone, visitors, visits, pageviews, bounces,
    cast(time_spent_seconds as double precision) as time_spent_seconds
  from {{ ref("stg_matomo__visits_summary") }}
),
unioned as (
  select * from pirsch
  union all
  select * from umami
  union all
  select * from webtrekk
  union all
  select * from opentracker
  union all
  select * from matomo
)
select
  vendor,
  account,
  site_id,
  {{ clickhaul.account_key("vendor", "account", "site_id") }} as site_key,
  day,
  timezone,
  cast(visitors as bigint) as visitors,
  cast(visits as bigint) as visits,
  cast(pageviews as bigint) as pageviews,
  cast(bounces as bigint) as bounces,
  {{ clickhaul.ratio("bounces", "visits") }} as bounce_rate,
  time_spent_seconds,
  {{ clickhaul.ratio("time_spent_seconds", "visits") }} as avg_visit_seconds,
  {{ clickhaul.ratio("pageviews", "visits") }} as pageviews_per_visit
from unioned
