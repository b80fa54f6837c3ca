{#- Reading what clickhaul loaded, whichever vendors were loaded.

    `source_or_empty` selects the listed columns of a source table, cast to one type each; a column the table lacks
    (dlt adds a column only once a value arrives) is a typed NULL, and a table that does not exist (the vendor was
    never loaded, or not this resource) becomes an empty select with the same columns. So every model builds with
    any subset of vendors present, and vendors not loaded contribute no rows.

    Every select also has `account` (text): the clickhaul account the row was loaded for. A table loaded before
    accounts existed has no such column: its rows are the implicit account's, `default` (what `clickhaul run` fills
    the column with when it adopts such a table). -#}

{% macro ch_type(kind) -%}
  {%- set types = {
      "text": "varchar",
      "bigint": "bigint",
      "double": "double precision",
      "date": "date",
      "timestamp": "timestamp with time zone",
      "bool": "boolean",
  } -%}
  {{- types[kind] -}}
{%- endmacro %}

{% macro source_relation(source_name, table_name) -%}
  {#- The existing relation behind source(...), or none (only known at execution time). -#}
  {%- set declared = source(source_name, table_name) -%}
  {%- if not execute -%}
    {{- return(none) -}}
  {%- endif -%}
  {{- return(adapter.get_relation(database=declared.database, schema=declared.schema, identifier=declared.identifier)) -}}
{%- endmacro %}

{% macro source_or_empty(source_name, table_name, columns) -%}
  {%- set relation = clickhaul.source_relation(source_name, table_name) -%}
  {%- set present = [] -%}
  {%- if relation is not none -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
      {%- do present.append(column.name | lower) -%}
    {%- endfor -%}
  {%- endif -%}
  select
  {%- for name, kind in columns.items() %}
    {% if name in present -%}
      cast({{ adapter.quote(name) }} as {{ clickhaul.ch_type(kind) }})
    {%- else -%}
      cast(null as {{ clickhaul.ch_type(kind) }})
    {%- endif %} as {{ adapter.quote(name) }},
  {%- endfor %}
    {% if "account" in present -%}
      coalesce(cast({{ adapter.quote("account") }} as {{ clickhaul.ch_type("text") }}), 'default')
    {%- else -%}
      cast('default' as {{ clickhaul.ch_type("text") }})
    {%- endif %} as {{ adapter.quote("account") }},
    {% if "_dlt_load_id" in present -%}
      cast(_dlt_load_id as {{ clickhaul.ch_type("text") }})
    {%- else -%}
      cast(null as {{ clickhaul.ch_type("text") }})
    {%- endif %} as _dlt_load_id
  {% if relation is not none -%}
  from {{ relation }}
  {%- else -%}
  {#- not loaded: no rows, same columns #}
  where 1 = 0
  {%- endif %}
{%- endmacro %}

{% macro latest_load(relation, keys) -%}
  {#- One row per account and natural key: the one from the latest dlt load (load ids are increasing unix-time
      strings). Accounts never replace each other's rows: the same key in two accounts is two rows. -#}
  select * from (
    select
      loaded.*,
      row_number() over (
        partition by loaded.account, {{ keys | join(", ") }}
        order by loaded._dlt_load_id desc nulls last
      ) as _clickhaul_rank
    from {{ relation }} as loaded
  ) as ranked
  where _clickhaul_rank = 1
{%- endmacro %}

{% macro account_key(vendor, account, id) -%}
  {#- The public key of a site or a session across vendors and accounts: `vendor:id` for the implicit account
      `default` (the key before accounts existed, which users' joins rely on), `vendor:account:id` for a named one.
      Account names are lowercase letters, digits and `_`, so a named account's key never equals a default one's
      unless a vendor's id itself holds `name:`. -#}
  case when {{ account }} = 'default'
    then cast({{ vendor }} as varchar) || ':' || {{ id }}
    else cast({{ vendor }} as varchar) || ':' || {{ account }} || ':' || {{ id }}
  end
{%- endmacro %}
