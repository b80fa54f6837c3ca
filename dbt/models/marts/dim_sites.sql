-- Every site of every loaded vendor and account. Grain: one row per vendor, account and site_id (site_key, see the
-- macro account_key: vendor:site_id for the account `default`, vendor:account:site_id for a named one).
-- Sites come from the vendors' site lists and from the data itself, so a fact row always finds its site.
with listed as (
  select 'pirsch' as vendor, account, site_id, site_name, hostname, timezone from {{ ref("stg_pirsch__domains") }}
  union all
  select 'pirsch', account, site_id, null, null, timezone from {{ ref("stg_pirsch__visitors") }}
  union all
  select 'umami', account, site_id, site_name, hostname, null from {{ ref("stg_umami__websites") }}
  union all
  select 'umami', account, site_id, null, null, timezone from {{ ref("stg_umami__website_stats") }}
  union all
  select 'umami', account, site_id, null, null, null from {{ ref("stg_umami__metrics") }}
  union all
  select 'umami', account, site_id, null, null, null from {{ ref("stg_umami__sessions") }}
  union all
  select 'webtrekk', account, site_id, site_name, null, null from {{ ref("stg_webtrekk__accounts") }}
  union all
  select 'webtrekk', account, site_id, null, null, null from {{ ref("stg_webtrekk__traffic_daily") }}
  union all
  select 'webtrekk', account, site_id, null, null, null from {{ ref("stg_webtrekk__pages_daily") }}
  union all
  select 'opentracker', account, site_id, site_id, site_id, null from {{ ref("stg_opentracker__sessions") }}
  union all
  select 'pirsch', account, site_id, null, null, null from {{ ref("stg_pirsch__pages") }}
  union all
  select 'pirsch', account, site_id, null, null, null from {{ ref("stg_pirsch__entry_pages") }}
  union all
  select 'pirsch', account, site_id, null, null, null from {{ ref("stg_pirsch__exit_pages") }}
  union all
  select 'pirsch', account, site_id, null, null, null from {{ ref("stg_pirsch__referrers") }}
  union all
  select 'pirsch', account, site_id, null, null, null from {{ ref("stg_pirsch__utm") }}
  union all
  select 'matomo', account, site_id, site_name, hostname, timezone from {{ ref("stg_matomo__sites") }}
  union all
  select 'matomo', account, site_id, null, null, timezone from {{ ref("stg_matomo__visits_summary") }}
  union all
  select 'matomo', account, site_id, null, null, null from {{ ref("stg_matomo__pages") }}
  union all
  select 'matomo', account, site_id, null, null, null from {{ ref("stg_matomo__referrers") }}
  union all
  select 'matomo', account, site_id, null, null, null from {{ ref("stg_matomo__visits") }}
)
select
  {{ clickhaul.account_key("vendor", "account", "site_id") }} as site_key,
  cast(vendor as varchar) as vendor,
  account,
  site_id,
  max(site_name) as site_name,
  max(hostname) as hostname,
  max(timezone) as timezone
from listed
where site_id is not null
group by vendor, account, site_id
