-- Matomo visits, row level: one row per site and visit id, with its page views and entry and exit paths from the
-- visit's actions. `day` is the local day of the last action (the day Matomo's reports count the visit on).
with source as (
  {{ clickhaul.source_or_empty("matomo", "visits", {
      "site_id": "bigint", "id_visit": "bigint", "day": "date", "first_action_time": "timestamp",
      "last_action_time": "timestamp", "visitor_id": "text", "actions": "bigint", "referrer_url": "text",
      "country_code": "text", "city": "text", "browser_name": "text", "operating_system_name": "text",
      "device_type": "text"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["site_id", "id_visit"]) }}),
action_source as (
  {{ clickhaul.source_or_empty("matomo", "actions", {
      "site_id": "bigint", "id_visit": "bigint", "position": "bigint", "type": "text", "url": "text"}) }}
),
actions as ({{ clickhaul.latest_load("action_source", ["site_id", "id_visit", "position"]) }}),
views as (
  select
    account,
    site_id,
    id_visit,
    count(*) as pageviews,
    min(position) as first_position,
    max(position) as last_position
  from actions
  where type = 'action'
  group by account, site_id, id_visit
)
select
  latest.account,
  cast(latest.site_id as varchar) as site_id,
  cast(latest.id_visit as varchar) as session_id,
  latest.day,
  latest.first_action_time as started_at,
  latest.last_action_time as ended_at,
  latest.visitor_id,
  coalesce(views.pageviews, 0) as pageviews,
  latest.actions,
  {{ clickhaul.url_path("entry_action.url") }} as entry_path,
  {{ clickhaul.url_path("exit_action.url") }} as exit_path,
  {{ clickhaul.url_host("latest.referrer_url") }} as referrer_host,
  latest.country_code as country,
  latest.city,
  latest.browser_name as browser,
  latest.operating_system_name as os,
  lower(latest.device_type) as device
from latest
left join views
  on views.account = latest.account and views.site_id = latest.site_id and views.id_visit = latest.id_visit
left join actions as entry_action
  on entry_action.account = latest.account and entry_action.site_id = latest.site_id
  and entry_action.id_visit = latest.id_visit
  and entry_action.position = views.first_position
left join actions as exit_action
  on exit_action.account = latest.account and exit_action.site_id = latest.site_id
  and exit_action.id_visit = latest.id_visit
  and exit_action.position = views.last_position
