{#- Counts are never negative (NULL is allowed: the vendor does not report it). -#}
{% test not_negative(model, column_name) %}
select {{ column_name }} from {{ model }} where {{ column_name }} < 0
{% endtest %}
