{#- Portable (DuckDB and PostgreSQL) URL helpers: regexp_replace with a leading anchor replaces once in both. -#}

{% macro url_path(expression) -%}
  {#- "https://host/a/b?x=1#y" -> "/a/b"; a bare path stays; empty -> "/"; NULL stays NULL. -#}
  case when {{ expression }} is null then null else
    coalesce(nullif(
      regexp_replace(regexp_replace({{ expression }}, '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*', ''), '[?#].*$', ''),
    ''), '/')
  end
{%- endmacro %}

{% macro url_host(expression) -%}
  {#- "https://www.Example.com:8080/x" -> "example.com"; a value without "://" is taken as a host already. -#}
  case when nullif(trim({{ expression }}), '') is null then null else
    regexp_replace(
      lower(regexp_replace(regexp_replace({{ expression }}, '^[A-Za-z][A-Za-z0-9+.-]*://', ''), '[/?#:].*$', '')),
      '^www\.', ''
    )
  end
{%- endmacro %}

{% macro channel_from_host(host) -%}
  {#- A coarse channel for a referrer host (already lower case, no "www."): NULL or empty is direct. Search and social
      hosts are matched by name; everything else with a referrer is a referral. -#}
  case
    when nullif({{ host }}, '') is null then 'direct'
    when {{ host }} like 'google.%' or {{ host }} like '%.google.%' or {{ host }} = 'google'
      or {{ host }} like 'bing.%' or {{ host }} = 'bing' or {{ host }} like 'duckduckgo.%' or {{ host }} = 'duckduckgo'
      or {{ host }} like '%yahoo.%' or {{ host }} like 'yandex.%' or {{ host }} like 'baidu.%'
      or {{ host }} like 'ecosia.%' or {{ host }} like 'search.brave.%' or {{ host }} like 'startpage.%'
      then 'organic_search'
    when {{ host }} in ('t.co', 'twitter', 'x.com', 'twitter.com', 'facebook', 'reddit', 'linkedin', 'lnkd.in')
      or {{ host }} like '%facebook.%' or {{ host }} like '%twitter.com' or {{ host }} like '%reddit.com'
      or {{ host }} like '%linkedin.com' or {{ host }} like '%instagram.com' or {{ host }} like '%youtube.com'
      or {{ host }} like '%pinterest.%' or {{ host }} like '%tiktok.com' or {{ host }} like 'news.ycombinator.com'
      or {{ host }} = 'ycombinator' or {{ host }} like '%mastodon.%'
      then 'organic_social'
    else 'referral'
  end
{%- endmacro %}

{% macro umami_channel(value) -%}
  {#- Umami 3's channel names (camelCase) in the package's vocabulary. -#}
  case {{ value }}
    when 'direct' then 'direct'
    when 'organicSearch' then 'organic_search'
    when 'paidSearch' then 'paid_search'
    when 'organicSocial' then 'organic_social'
    when 'paidSocial' then 'paid_social'
    when 'email' then 'email'
    when 'referral' then 'referral'
    when 'organicShopping' then 'organic_shopping'
    when 'paidShopping' then 'paid_shopping'
    when 'organicVideo' then 'organic_video'
    when 'paidVideo' then 'paid_video'
    when 'sms' then 'sms'
    when 'display' then 'display'
    when 'affiliate' then 'affiliate'
    when 'affiliates' then 'affiliate'
    else 'other'
  end
{%- endmacro %}

{% macro ratio(numerator, denominator) -%}
  {#- A share as double precision; NULL when the denominator is 0 or NULL (integer division in PostgreSQL otherwise). -#}
  case when coalesce({{ denominator }}, 0) = 0 then null
    else cast({{ numerator }} as double precision) / cast({{ denominator }} as double precision) end
{%- endmacro %}

{% macro webtrekk_site_id() -%}
  {#- Webtrekk rows do not carry the account: the var, else the only account the login sees, else "webtrekk". -#}
  {%- set configured = var("clickhaul_webtrekk_site_id", none) -%}
  {%- if configured is not none and configured | string | length > 0 -%}
    cast('{{ configured | string | replace("'", "''") }}' as varchar)
  {%- else -%}
    {%- set accounts = clickhaul.source_relation("webtrekk", "accounts") -%}
    {%- if accounts is not none -%}
      coalesce((select case when count(*) = 1 then min(cast(customer_id as varchar)) end from {{ accounts }}), 'webtrekk')
    {%- else -%}
      cast('webtrekk' as varchar)
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}
