-- Cross-check: per vendor, page views, entries and exits in fct_pages_daily equal their staging totals.
with staged as (
  select 'pirsch' as vendor, 'views' as measure, sum(views) as total from {{ ref("stg_pirsch__pages") }}
  union all
  select 'pirsch', 'entries', sum(entries) from {{ ref("stg_pirsch__entry_pages") }}
  union all
  select 'pirsch', 'exits', sum(exits) from {{ ref("stg_pirsch__exit_pages") }}
  union all
  select 'umami', case metric_type when 'path' then 'views' when 'entry' then 'entries' else 'exits' end, sum(total)
  from {{ ref("stg_umami__metrics") }} where metric_type in ('path', 'entry', 'exit') and value is not null
  group by metric_type
  union all
  select 'webtrekk', 'views', sum(views) from {{ ref("stg_webtrekk__pages_daily") }} where page_name is not null
  union all
  select 'opentracker', 'entries', count(entry_path) from {{ ref("stg_opentracker__sessions") }}
),
mart as (
  select vendor, 'views' as measure, sum(views) as total from {{ ref("fct_pages_daily") }} group by vendor
  union all
  select vendor, 'entries', sum(entries) from {{ ref("fct_pages_daily") }} group by vendor
  union all
  select vendor, 'exits', sum(exits) from {{ ref("fct_pages_daily") }} group by vendor
)
select staged.vendor, staged.measure, staged.total as staged_total, mart.total as mart_total
from staged
left join mart on mart.vendor = staged.vendor and mart.measure = staged.measure
where coalesce(staged.total, 0) <> coalesce(mart.total, 0)
