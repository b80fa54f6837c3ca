{#- Reading what clickhaul loaded, whichever vendors were loaded.

    `source_or_empty` selects the listed columns of a source table, cast to one type each; a column the table lacks
    (dlt adds a column only once a value arrives) is a typed NULL, and a table that does not exist (the vendor was
    never loaded, or not this resource) becomes an empty select with the same columns. So every model builds with
    any subset of vendors present, and vendors not loaded contribute no rows. -#}

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
  {#- One row per natural key: the one from the latest dlt load (load ids are increasing unix-time strings). -#}
  select * from (
    select
      loaded.*,
      row_number() over (
        partition by {{ keys | join(", ") }}
        order by loaded._dlt_load_id desc nulls last
      ) as _clickhaul_rank
    from {{ relation }} as loaded
  ) as ranked
  where _clickhaul_rank = 1
{%- endmacro %}
