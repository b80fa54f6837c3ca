-- Pages per vendor, account, site and day. Grain: one row per vendor, account, site_id, day and path.
-- `visitors` is NOT additive (across days, or across paths). Webtrekk's `path` is its page name.
with parts as (
  select 'pirsch' as vendor, account, site_id, day, path, views, visitors,
    cast(null as bigint) as entries, cast(null as bigint) as exits
  from {{ ref("stg_pirsch__pages") }}
  union all
  select 'pirsch', account, site_id, day, path, null, null, entries, null from {{ ref("stg_pirsch__entry_pages") }}
  union all
  select 'pirsch', account, site_id, day, path, null, null, null, exits from {{ ref("stg_pirsch__exit_pages") }}
  union all
  select 'umami', account, site_id, day, value,
    case when metric_type = 'path' then total end,
    null,
    case when metric_type = 'entry' then total end,
    case when metric_type = 'exit' then total end
  from {{ ref("stg_umami__metrics") }}
  where metric_type in ('path', 'entry', 'exit')
  union all
  select 'webtrekk', account, site_id, day, page_name, views, visitors, null, null
  from {{ ref("stg_webtrekk__pages_daily") }}
  union all
  select 'opentracker', account, site_id, day, entry_path, null, null, 1, null
  from {{ ref("fct_sessions") }} where vendor = 'opentracker' and entry_path is not null
  union all
  select 'opentracker', account, site_id, day, exit_path, null, null, null, 1
  from {{ ref("fct_sessions") }} where vendor = 'opentracker' and exit_path is not null
  union all
  select 'matomo', account, site_id, day, path, views, visitors, entries, exits from {{ ref("stg_matomo__pages") }}
)
select
  cast(vendor as varchar) as vendor,
  account,
  site_id,
  {{ clickhaul.account_key("vendor", "account", "site_id") }} as site_key,
  day,
  path,
  cast(sum(views) as bigint) as views,
  cast(sum(visitors) as bigint) as visitors,
  cast(sum(entries) as bigint) as entries,
  cast(sum(exits) as bigint) as exits
from parts
where path is not null
group by vendor, account, site_id, day, path
