-- The flight store: one row per flight, one row per position report.
-- Units are the data model's: altitude in feet, airspeed in knots, times in UTC.

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE flight_metadata (
    flight_id         VARCHAR(12) PRIMARY KEY,
    airline           VARCHAR(128),
    flight_number     VARCHAR(16),
    departure_airport VARCHAR(8),
    arrival_airport   VARCHAR(8),
    -- OpenSky drops identify aircraft, not flights: keep what they give.
    icao24            VARCHAR(6),
    callsign          VARCHAR(8),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The seed declared `PRIMARY KEY flight_id` on this table, which is invalid SQL and wrong for
-- a time series; the key is the flight and the instant. altitude and airspeed are nullable:
-- real ADS-B has positions without them, and a ground track with no altitude is still a track.
CREATE TABLE flight_data (
    flight_id     VARCHAR(12)      NOT NULL,
    "timestamp"   TIMESTAMPTZ      NOT NULL,
    latitude      DOUBLE PRECISION NOT NULL,
    longitude     DOUBLE PRECISION NOT NULL,
    altitude      INT,
    airspeed      INT,
    track         REAL,
    vertical_rate INT,
    on_ground     BOOLEAN,
    squawk        VARCHAR(4),
    PRIMARY KEY (flight_id, "timestamp")
);

-- One-day chunks match the daily partitions: retention drops whole days.
SELECT create_hypertable('flight_data', 'timestamp', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false);

-- Flight search by time window scans chunks by time, then groups by flight.
CREATE INDEX flight_data_time_flight_idx ON flight_data ("timestamp" DESC, flight_id);
