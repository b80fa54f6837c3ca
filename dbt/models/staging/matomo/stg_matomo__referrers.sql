-- Matomo referrers per site, local day, referrer type and name (Referrers.getAll). `channel` from Matomo's own
-- referrer type: direct, search engine, website, social network (campaigns and the rest: other).
with source as (
  {{ clickhaul.source_or_empty("matomo", "referrers", {
      "site_id": "bigint", "day": "date", "referrer_type": "bigint", "label": "text", "nb_uniq_visitors": "bigint",
      "nb_visits": "bigint"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["site_id", "day", "referrer_type", "label"]) }})
select
  account,
  cast(site_id as varchar) as site_id,
  day,
  referrer_type,
  case when referrer_type = 1 then null else lower(label) end as referrer_name,
  case referrer_type
    when 1 then 'direct'
    when 2 then 'organic_search'
    when 3 then 'referral'
    when 7 then 'organic_social'
    else 'other'
  end as channel,
  nb_uniq_visitors as visitors,
  nb_visits as visits
from latest
