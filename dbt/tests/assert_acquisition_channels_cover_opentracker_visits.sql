-- Cross-check: every Opentracker visit lands in exactly one channel, so per site-day the channel visits add up to the
-- visits in fct_traffic_daily (per account: two accounts' sites never mix).
with channels as (
  select account, site_id, day, sum(visits) as visits
  from {{ ref("fct_acquisition_daily") }}
  where vendor = 'opentracker' and dimension = 'channel'
  group by account, site_id, day
)
select traffic.account, traffic.site_id, traffic.day, traffic.visits, channels.visits as channel_visits
from {{ ref("fct_traffic_daily") }} as traffic
left join channels
  on channels.account = traffic.account and channels.site_id = traffic.site_id and channels.day = traffic.day
where traffic.vendor = 'opentracker' and coalesce(channels.visits, 0) <> traffic.visits
