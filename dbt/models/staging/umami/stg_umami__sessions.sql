-- Umami sessions, row level: one row per session id. An Umami session can hold several visits (`visits`).
with source as (
  {{ clickhaul.source_or_empty("umami", "sessions", {
      "id": "text", "website_id": "text", "day": "date", "first_at": "timestamp", "last_at": "timestamp",
      "hostname": "text", "browser": "text", "os": "text", "device": "text", "language": "text", "country": "text",
      "region": "text", "city": "text", "visits": "bigint", "views": "bigint"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["id"]) }})
select
  account,
  id as session_id,
  website_id as site_id,
  day,
  first_at as started_at,
  last_at as ended_at,
  hostname,
  browser,
  os,
  device,
  language,
  country,
  region,
  city,
  visits,
  views as pageviews
from latest
