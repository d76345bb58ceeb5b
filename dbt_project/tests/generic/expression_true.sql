{#- Fails with every row for which `expression` is false (null counts as passing: a missing
    value is the not_null test's business). -#}
{% test expression_true(model, column_name=none, expression='true') %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
