{#- No two rows share the same values in `columns` (the model's grain). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(", ") }}, count(*) as rows_with_this_key
from {{ model }}
group by {{ columns | join(", ") }}
having count(*) > 1
{% endtest %}
