-- Row-level sessions from the vendors that export them (Opentracker visits, Umami sessions, Matomo visits).
-- Grain: one row per vendor, account and session_id (session_key).
with opentracker as (
  select
    cast('opentracker' as varchar) as vendor,
    account,
    site_id,
    session_id,
    day,
    started_at,
    ended_at,
    visitor_id,
    cast(1 as bigint) as visits,
    pageviews,
    entry_path,
    exit_path,
    referrer_host,
    {{ clickhaul.channel_from_host("referrer_host") }} as channel,
    country,
    city,
    browser,
    os,
    cast(null as varchar) as device
  from {{ ref("stg_opentracker__sessions") }}
),
umami as (
  select
    cast('umami' as varchar) as vendor,
    account,
    site_id,
    session_id,
    day,
    started_at,
    ended_at,
    cast(null as varchar) as visitor_id,
    visits,
    pageviews,
    cast(null as varchar) as entry_path,
    cast(null as varchar) as exit_path,
    cast(null as varchar) as referrer_host,
    cast(null as varchar) as channel,
    country,
    city,
    browser,
    os,
    device
  from {{ ref("stg_umami__sessions") }}
),
matomo as (
  -- One Matomo visit is one session; its day is the day of its last action.
  select cast('matomo' as varchar) as vendor, account, site_id, session_id, day, started_at, ended_at, visitor_id,
    cast(1 as bigint) as visits, pageviews, entry_path, exit_path, referrer_host,
    {{ clickhaul.channel_from_host("referrer_host") }} as channel, country, city, browser, os, device
  from {{ ref("stg_matomo__visits") }}
),
unioned as (
  select * from opentracker
  union all
  select * from umami
  union all
  select * from matomo
)
select
  {{ clickhaul.account_key("vendor", "account", "session_id") }} as session_key,
  vendor,
  account,
  site_id,
  {{ clickhaul.account_key("vendor", "account", "site_id") }} as site_key,
  session_id,
  day,
  started_at,
  ended_at,
  case when ended_at >= started_at
    then cast(extract(epoch from ended_at) - extract(epoch from started_at) as double precision) end
    as duration_seconds,
  visitor_id,
  visits,
  pageviews,
  case when pageviews is null then null when pageviews <= 1 and coalesce(visits, 1) <= 1 then true else false end
    as is_bounce,
  entry_path,
  exit_path,
  referrer_host,
  channel,
  country,
  city,
  browser,
  os,
  device
from unioned
