-- Pirsch UTM breakdowns in one table: one row per domain, local day, parameter (utm_source, utm_medium,
-- utm_campaign) and value. Pirsch reports each parameter on its own, so values of different parameters do not combine.
{% set parameters = ["utm_source", "utm_medium", "utm_campaign"] %}
with
{% for parameter in parameters %}
{{ parameter }}_source as (
  {{ clickhaul.source_or_empty("pirsch", parameter ~ "s", {
      "domain_id": "text", "day": "date", parameter: "text", "visitors": "bigint"}) }}
),
{{ parameter }}_latest as ({{ clickhaul.latest_load(parameter ~ "_source", ["domain_id", "day", parameter]) }}),
{% endfor %}
unioned as (
{% for parameter in parameters %}
  select account, domain_id, day, '{{ parameter }}' as parameter, {{ parameter }} as value, visitors
  from {{ parameter }}_latest
  {% if not loop.last %}union all{% endif %}
{% endfor %}
)
select
  account,
  domain_id as site_id,
  day,
  cast(parameter as varchar) as parameter,
  value,
  visitors
from unioned
