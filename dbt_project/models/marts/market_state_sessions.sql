{{
    config(
        unique_key=['symbol_id', 'session_date', 'state'],
        pre_hook="{{ delete_partition_window('session_date') }}"
    )
}}

-- per symbol, session and market state: the time spent in it and the transitions out of
-- it. A row holds until the symbol's next row, at most until the end of the session's last
-- traded minute (its last candle), so a closed market's night is not counted.

with states as (
    select * from {{ ref('stg_market_state') }}
    where
        state_ts >= {{ window_start_ts() }}
        and state_ts < {{ window_end_ts() }}
),

-- the state each symbol was in when the window opened (a transition at the first row)
carried_in as (
    select distinct on (symbol_id) *
    from {{ ref('stg_market_state') }}
    where
        state_ts < {{ window_start_ts() }}
        and state_ts >= {{ window_start_ts(7) }}
    order by symbol_id asc, state_ts desc
),

session_ends as (
    select
        symbol_id,
        bucket_date as session_date,
        max(bucket) + interval '1 minute' as ends_at
    from {{ ref('stg_candles_1m') }}
    where
        bucket >= {{ window_start_ts() }}
        and bucket < {{ window_end_ts() }}
    group by symbol_id, bucket_date
),

ordered as (
    select
        symbol_id,
        state_date as session_date,
        state_ts,
        state,
        lag(state) over by_time as previous_state,
        lead(state) over by_time as next_state,
        lead(state_ts) over by_time as next_ts,
        lead(state_date) over by_time as next_date
    from (
        select * from states
        union all
        select * from carried_in
    ) as rows_in_order
    window by_time as (partition by symbol_id order by state_ts)
),

spans as (
    select
        ordered.*,
        -- ends at the next row, the session's last traded minute or midnight (UTC), first
        greatest(0, extract(epoch from least(
            coalesce(ordered.next_ts, 'infinity'::timestamptz),
            coalesce(session_ends.ends_at, 'infinity'::timestamptz),
            (ordered.session_date + 1)::timestamp at time zone 'UTC'
        ) - ordered.state_ts)::float8) as seconds
    from ordered
    left join session_ends
        on
            ordered.symbol_id = session_ends.symbol_id
            and ordered.session_date = session_ends.session_date
    where ordered.session_date >= {{ window_start() }}
),

per_state as (
    select
        symbol_id,
        session_date,
        state,
        count(*) as state_rows,
        min(state_ts) as first_seen_at,
        {%- for target in ['BALANCE', 'IMBALANCE_UP', 'IMBALANCE_DOWN', 'UNKNOWN'] %}
            count(*) filter (
                where
                next_state = '{{ target }}' and state <> '{{ target }}'
                and next_date = session_date
            ) as transitions_to_{{ target | lower }},
        {%- endfor %}
        count(*) filter (
            where previous_state is not null and previous_state <> state
        ) as entries,
        sum(seconds) as seconds_in_state
    from spans
    group by symbol_id, session_date, state
),

final as (
    select
        per_state.symbol_id,
        symbols.symbol,
        per_state.session_date,
        per_state.state,
        per_state.state_rows,
        per_state.first_seen_at,
        per_state.seconds_in_state,
        per_state.entries,
        per_state.transitions_to_balance,
        per_state.transitions_to_imbalance_up,
        per_state.transitions_to_imbalance_down,
        per_state.transitions_to_unknown,
        case
            when sum(per_state.seconds_in_state) over session > 0
                then
                    per_state.seconds_in_state
                    / sum(per_state.seconds_in_state) over session * 100
        end as share_of_session_pct
    from per_state
    inner join {{ ref('stg_symbols') }} as symbols
        on per_state.symbol_id = symbols.symbol_id
    window session as (partition by per_state.symbol_id, per_state.session_date)
)

select * from final
