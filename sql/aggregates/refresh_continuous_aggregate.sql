CALL refresh_continuous_aggregate(%(aggregate)s::regclass, %(start)s::timestamptz, %(end)s::timestamptz)
