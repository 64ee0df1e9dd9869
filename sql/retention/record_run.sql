INSERT INTO retention_runs (partition_day, raw_horizon, aggregate_horizon, quarantine_before,
                            raw_chunks, raw_bytes, raw_range_start, raw_range_end,
                            aggregate_chunks, quarantine_rows)
VALUES (%(partition_day)s, %(raw_horizon)s, %(aggregate_horizon)s, %(quarantine_before)s,
        %(raw_chunks)s, %(raw_bytes)s, %(raw_range_start)s, %(raw_range_end)s,
        %(aggregate_chunks)s, %(quarantine_rows)s)
