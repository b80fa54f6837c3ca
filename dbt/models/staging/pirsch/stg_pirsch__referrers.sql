-- Pirsch referrers: one row per domain, local day and referrer; an empty referrer is direct traffic.
with source as (
  {{ clickhaul.source_or_empty("pirsch", "referrers", {
      "domain_id": "text", "day": "date", "referrer": "text", "referrer_name": "text", "visitors": "bigint",
      "sessions": "bigint", "bounces": "bigint"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["domain_id", "day", "referrer", "referrer_name"]) }})
select
  account,
  domain_id as site_id,
  day,
  nullif(referrer, '') as referrer_url,
  nullif(referrer_name, '') as referrer_name,
  {{ clickhaul.url_host("coalesce(nullif(referrer, ''), referrer_name)") }} as referrer_host,
  visitors,
  sessions as visits,
  bounces
from latest
