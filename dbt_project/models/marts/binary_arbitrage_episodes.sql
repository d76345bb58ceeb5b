{{
    config(
        unique_key=['kind', 'opportunity_key', 'started_at'],
        pre_hook="{{ delete_partition_window('started_date', lookback_days=1) }}"
    )
}}

-- Polymarket opportunities merged into episodes: the opportunities of one market (pair) or
-- event (neg_risk basket) that overlap or follow each other within `episode_gap_seconds`
-- are one episode. Islands are found over two days before the window, so an episode that
-- crosses midnight is rebuilt whole by the next day's run.

with opportunities as (
    select * from {{ ref('stg_binary_opportunities') }}
    where
        opened_at >= {{ window_start_ts(2) }}
        and opened_at < {{ window_end_ts() }}
),

ordered as (
    select
        *,
        -- the latest end among the earlier opportunities of the key (open = infinity)
        max(coalesce(closed_at, 'infinity'::timestamptz)) over (
            partition by kind, opportunity_key
            order by opened_at, opportunity_id
            rows between unbounded preceding and 1 preceding
        ) as previous_end
    from opportunities
),

numbered as (
    select
        *,
        sum(
            case
                when
                    previous_end is null
                    or opened_at
                    > previous_end + interval '1 second' * {{ var('episode_gap_seconds') }}
                    then 1
                else 0
            end
        ) over (
            partition by kind, opportunity_key
            order by opened_at, opportunity_id
        ) as episode_number
    from ordered
),

episodes as (
    select
        kind,
        opportunity_key,
        min(market_id) as market_id,
        min(event_id) as event_id,
        min(opportunity_id) as first_opportunity_id,
        count(*) as opportunities,
        min(opened_at) as started_at,
        -- null while any of its opportunities is still open
        case when bool_and(closed_at is not null) then max(closed_at) end as ended_at,
        max(best_edge) as best_edge,
        (array_agg(size order by best_edge desc nulls last))[1] as size_at_best_edge_stored
    from numbered
    group by kind, opportunity_key, episode_number
),

final as (
    select
        episodes.kind,
        episodes.opportunity_key,
        episodes.market_id,
        episodes.event_id,
        episodes.first_opportunity_id,
        episodes.opportunities,
        episodes.started_at,
        (episodes.started_at at time zone 'UTC')::date as started_date,
        episodes.ended_at,
        extract(epoch from episodes.ended_at - episodes.started_at)::float8
            as duration_seconds,
        episodes.best_edge,
        exit_price.edge as exit_edge,
        coalesce(best_price.executable_size, episodes.size_at_best_edge_stored)
            as size_at_best_edge,
        exit_price.yes_bid + exit_price.no_bid as exit_value
    from episodes
    -- a pair's stored price row with the highest edge inside the episode
    left join lateral (
        select prices.executable_size
        from {{ ref('stg_binary_prices') }} as prices
        where
            episodes.kind = 'pair'
            and prices.market_id = episodes.market_id
            and prices.price_ts >= episodes.started_at
            and prices.price_ts <= coalesce(episodes.ended_at, 'infinity'::timestamptz)
        order by prices.edge desc nulls last, prices.price_ts asc
        limit 1
    ) as best_price on true
    -- a closed pair's last price at or before its end: what selling both legs returned
    left join lateral (
        select
            prices.yes_bid,
            prices.no_bid,
            prices.edge
        from {{ ref('stg_binary_prices') }} as prices
        where
            episodes.kind = 'pair'
            and prices.market_id = episodes.market_id
            and prices.price_ts <= episodes.ended_at
        order by prices.price_ts desc
        limit 1
    ) as exit_price on true
)

select * from final
where
    started_date >= {{ window_start(1) }}
    and started_date < {{ window_end() }}
