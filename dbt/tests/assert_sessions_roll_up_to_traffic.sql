-- Cross-check: for the row-level vendor Opentracker, each site-day's visits, page views and distinct visitors in
-- fct_traffic_daily are exactly what its rows in fct_sessions add up to (per account).
with rolled as (
  select account, site_id, day, count(*) as visits, sum(pageviews) as pageviews, count(distinct visitor_id) as visitors
  from {{ ref("fct_sessions") }}
  where vendor = 'opentracker'
  group by account, site_id, day
),
traffic as (
  select account, site_id, day, visits, pageviews, visitors
  from {{ ref("fct_traffic_daily") }}
  where vendor = 'opentracker'
)
select coalesce(rolled.account, traffic.account) as account, coalesce(rolled.site_id, traffic.site_id) as site_id,
  coalesce(rolled.day, traffic.day) as day
from rolled
full outer join traffic
  on traffic.account = rolled.account and traffic.site_id = rolled.site_id and traffic.day = rolled.day
where rolled.site_id is null or traffic.site_id is null
  or rolled.visits <> traffic.visits
  or coalesce(rolled.pageviews, 0) <> coalesce(traffic.pageviews, 0)
  or rolled.visitors <> traffic.visitors
