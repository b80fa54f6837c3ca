-- One row per Webtrekk account (customer id) the login sees.
with source as (
  {{ clickhaul.source_or_empty("webtrekk", "accounts", {"customer_id": "text", "title": "text"}) }}
),
latest as ({{ clickhaul.latest_load("source", ["customer_id"]) }})
select
  account,
  customer_id as site_id,
  title as site_name
from latest
