{#- The partition window [min_date, max_date) as SQL literals, from the dbt vars. -#}
{% macro window_start() -%}
    '{{ var("min_date") }}'::date
{%- endmacro %}

{% macro window_end() -%}
    '{{ var("max_date") }}'::date
{%- endmacro %}

{#- Pre-hook of the partitioned marts: empty the window before the model appends it again,
    so a re-run or a backfill of a range replaces exactly its days (idempotent). -#}
{% macro delete_partition_window(date_column) -%}
    {% if is_incremental() %}
        delete from {{ this }}
        where {{ date_column }} >= {{ window_start() }}
            and {{ date_column }} < {{ window_end() }}
    {% else %}
        select 1
    {% endif %}
{%- endmacro %}
