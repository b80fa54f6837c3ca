-- Opentracker visits, row level: one row per session id (a visit). `day` is the local day of the session start in
-- the source's configured timezone; timestamps are UTC.
with source as (
  {{ clickhaul.source_or_empty("opentracker", "sessions", {
      "session_id": "text", "site": "text", "day": "date", "session_start": "timestamp", "session_end": "timestamp",
      "use_id": "text", "machine_idx": "text", "pages_viewed": "bigint", "entry_page": "text", "current_page": "text",
      "session_referrer": "text", "session_referrer_hostname": "text", "country_code": "text", "city": "text",
      "browser": "text", "platform": "text", "resolution": "text"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["session_id"]) }})
select
  account,
  session_id,
  site as site_id,
  day,
  session_start as started_at,
  session_end as ended_at,
  coalesce(use_id, machine_idx) as visitor_id,
  pages_viewed as pageviews,
  entry_page as entry_url,
  {{ clickhaul.url_path("entry_page") }} as entry_path,
  {{ clickhaul.url_path("current_page") }} as exit_path,
  session_referrer as referrer_url,
  coalesce({{ clickhaul.url_host("session_referrer") }}, {{ clickhaul.url_host("session_referrer_hostname") }})
    as referrer_host,
  country_code as country,
  city,
  browser,
  platform as os,
  resolution as screen
from latest
