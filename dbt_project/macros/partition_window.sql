{#- The partition window [min_date, max_date) as SQL literals, from the dbt vars. The window
    never starts before the history start (MARKETFLOW_HISTORY_START, the first Dagster
    partition), so a plain `dbt build` covers exactly the days Dagster can backfill. A linter
    renders the models without dbt's env_var: the default date then. -#}
{% macro history_start() -%}
    {{ env_var('MARKETFLOW_HISTORY_START', '2010-01-01') if env_var is defined else '2010-01-01' }}
{%- endmacro %}

{% macro window_start(lookback_days=0) -%}
    {%- set first = [var("min_date") | string, history_start() | trim] | max -%}
    ('{{ first }}'::date - {{ lookback_days }})
{%- endmacro %}

{% macro window_end() -%}
    '{{ var("max_date") }}'::date
{%- endmacro %}

{#- The same bounds as UTC instants, for filters on an indexed timestamp column (a filter on
    a date computed from it cannot use the index). -#}
{% macro window_start_ts(lookback_days=0) -%}
    ({{ window_start(lookback_days) }}::timestamp at time zone 'UTC')
{%- endmacro %}

{% macro window_end_ts(extra_days=0) -%}
    (({{ window_end() }} + {{ extra_days }})::timestamp at time zone 'UTC')
{%- endmacro %}

{#- Pre-hook of the partitioned marts: empty the window before the model appends it again,
    so a re-run or a backfill of a range replaces exactly its days (idempotent). A mart whose
    rows depend on the next day's data (60-minute outcomes, episodes across midnight) passes
    lookback_days=1: each run also rebuilds the day before its window. `or_where` deletes
    rows the model recomputes on every run whatever the window (all-history aggregates). -#}
{% macro delete_partition_window(date_column, lookback_days=0, or_where='false') -%}
    {% if is_incremental() %}
        delete from {{ this }}
        where
            {{ date_column }} >= {{ window_start(lookback_days) }}
            and {{ date_column }} < {{ window_end() }}
            or {{ or_where }}
    {% else %}
        select 1
    {% endif %}
{%- endmacro %}
