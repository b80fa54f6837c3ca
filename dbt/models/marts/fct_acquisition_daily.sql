-- Where visitors came from, per vendor, account, site and day. Grain: one row per vendor, account, site_id, day,
-- dimension and value.
-- dimension is one of channel, referrer, utm_source, utm_medium, utm_campaign: vendors report each on its own, so
-- values of different dimensions never combine, and `visitors` is NOT additive across days.
with parts as (
  -- Pirsch: referrers (the empty referrer is direct), a channel derived from the referrer host, UTM breakdowns.
  select 'pirsch' as vendor, account, site_id, day, 'referrer' as dimension,
    coalesce(referrer_host, '(direct)') as value, visitors, visits
  from {{ ref("stg_pirsch__referrers") }}
  union all
  select 'pirsch', account, site_id, day, 'channel', {{ clickhaul.channel_from_host("referrer_host") }},
    visitors, visits
  from {{ ref("stg_pirsch__referrers") }}
  union all
  select 'pirsch', account, site_id, day, parameter, value, visitors, null from {{ ref("stg_pirsch__utm") }}
  union all
  -- Umami: referrer domains, its own channels (Umami 3) and UTM values (Umami 3), counted in visitors.
  select 'umami', account, site_id, day,
    case when metric_type = 'referrer' then 'referrer' else metric_type end,
    case
      when metric_type = 'channel' then {{ clickhaul.umami_channel("value") }}
      when metric_type = 'referrer' then coalesce({{ clickhaul.url_host("value") }}, '(direct)')
      else value
    end,
    total, null
  from {{ ref("stg_umami__metrics") }}
  where metric_type in ('referrer', 'channel', 'utm_source', 'utm_medium', 'utm_campaign')
  union all
  -- Opentracker: each visit's referrer host and the channel derived from it.
  select 'opentracker', account, site_id, day, 'referrer', coalesce(referrer_host, '(direct)'),
    null, 1
  from {{ ref("fct_sessions") }} where vendor = 'opentracker'
  union all
  select 'opentracker', account, site_id, day, 'channel', channel, null, 1
  from {{ ref("fct_sessions") }} where vendor = 'opentracker'
  union all
  -- Matomo: Referrers.getAll's names, and its own referrer types as channels.
  select 'matomo', account, site_id, day, 'referrer', coalesce(referrer_name, '(direct)'), visitors, visits
  from {{ ref("stg_matomo__referrers") }}
  union all
  select 'matomo', account, site_id, day, 'channel', channel, visitors, visits
  from {{ ref("stg_matomo__referrers") }}
),
opentracker_visitors as (
  -- Distinct visitors per referrer and channel need the rows, not the parts.
  select account, site_id, day, 'referrer' as dimension, coalesce(referrer_host, '(direct)') as value,
    count(distinct visitor_id) as visitors
  from {{ ref("fct_sessions") }} where vendor = 'opentracker'
  group by account, site_id, day, coalesce(referrer_host, '(direct)')
  union all
  select account, site_id, day, 'channel', channel, count(distinct visitor_id)
  from {{ ref("fct_sessions") }} where vendor = 'opentracker'
  group by account, site_id, day, channel
),
grouped as (
  select
    cast(vendor as varchar) as vendor,
    account,
    site_id,
    day,
    cast(dimension as varchar) as dimension,
    value,
    sum(visitors) as visitors,
    sum(visits) as visits
  from parts
  where value is not null
  group by vendor, account, site_id, day, dimension, value
)
select
  grouped.vendor,
  grouped.account,
  grouped.site_id,
  {{ clickhaul.account_key("grouped.vendor", "grouped.account", "grouped.site_id") }} as site_key,
  grouped.day,
  grouped.dimension,
  grouped.value,
  cast(coalesce(grouped.visitors, opentracker_visitors.visitors) as bigint) as visitors,
  cast(grouped.visits as bigint) as visits
from grouped
left join opentracker_visitors
  on grouped.vendor = 'opentracker'
  and opentracker_visitors.account = grouped.account
  and opentracker_visitors.site_id = grouped.site_id
  and opentracker_visitors.day = grouped.day
  and opentracker_visitors.dimension = grouped.dimension
  and opentracker_visitors.value = grouped.value
