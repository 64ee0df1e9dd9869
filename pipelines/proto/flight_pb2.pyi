import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Resolution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOLUTION_UNSPECIFIED: _ClassVar[Resolution]
    RESOLUTION_RAW: _ClassVar[Resolution]
    RESOLUTION_MINUTE: _ClassVar[Resolution]
    RESOLUTION_EVEN: _ClassVar[Resolution]
RESOLUTION_UNSPECIFIED: Resolution
RESOLUTION_RAW: Resolution
RESOLUTION_MINUTE: Resolution
RESOLUTION_EVEN: Resolution

class FlightData(_message.Message):
    __slots__ = ("flight_id", "latitude", "longitude", "altitude", "airspeed", "timestamp", "airline", "flight_number", "departure_airport", "arrival_airport", "track", "vertical_rate", "on_ground")
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    ALTITUDE_FIELD_NUMBER: _ClassVar[int]
    AIRSPEED_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    AIRLINE_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DEPARTURE_AIRPORT_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_AIRPORT_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_RATE_FIELD_NUMBER: _ClassVar[int]
    ON_GROUND_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    latitude: float
    longitude: float
    altitude: int
    airspeed: int
    timestamp: str
    airline: str
    flight_number: str
    departure_airport: str
    arrival_airport: str
    track: float
    vertical_rate: int
    on_ground: bool
    def __init__(self, flight_id: _Optional[str] = ..., latitude: _Optional[float] = ..., longitude: _Optional[float] = ..., altitude: _Optional[int] = ..., airspeed: _Optional[int] = ..., timestamp: _Optional[str] = ..., airline: _Optional[str] = ..., flight_number: _Optional[str] = ..., departure_airport: _Optional[str] = ..., arrival_airport: _Optional[str] = ..., track: _Optional[float] = ..., vertical_rate: _Optional[int] = ..., on_ground: _Optional[bool] = ...) -> None: ...

class FlightDataRequest(_message.Message):
    __slots__ = ("flight_id", "start_time", "end_time", "max_points")
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    max_points: int
    def __init__(self, flight_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_points: _Optional[int] = ...) -> None: ...

class FlightDataResponse(_message.Message):
    __slots__ = ("flight_data", "resolution", "stored_points")
    FLIGHT_DATA_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    STORED_POINTS_FIELD_NUMBER: _ClassVar[int]
    flight_data: _containers.RepeatedCompositeFieldContainer[FlightData]
    resolution: Resolution
    stored_points: int
    def __init__(self, flight_data: _Optional[_Iterable[_Union[FlightData, _Mapping]]] = ..., resolution: _Optional[_Union[Resolution, str]] = ..., stored_points: _Optional[int] = ...) -> None: ...

class StreamFlightDataRequest(_message.Message):
    __slots__ = ("flight_id", "start_time", "end_time", "page_size")
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    def __init__(self, flight_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("min_latitude", "min_longitude", "max_latitude", "max_longitude")
    MIN_LATITUDE_FIELD_NUMBER: _ClassVar[int]
    MIN_LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATITUDE_FIELD_NUMBER: _ClassVar[int]
    MAX_LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    min_latitude: float
    min_longitude: float
    max_latitude: float
    max_longitude: float
    def __init__(self, min_latitude: _Optional[float] = ..., min_longitude: _Optional[float] = ..., max_latitude: _Optional[float] = ..., max_longitude: _Optional[float] = ...) -> None: ...

class ListFlightsRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "airline", "departure_airport", "arrival_airport", "bounding_box", "page_size", "page_token")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    AIRLINE_FIELD_NUMBER: _ClassVar[int]
    DEPARTURE_AIRPORT_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_AIRPORT_FIELD_NUMBER: _ClassVar[int]
    BOUNDING_BOX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    airline: str
    departure_airport: str
    arrival_airport: str
    bounding_box: BoundingBox
    page_size: int
    page_token: str
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., airline: _Optional[str] = ..., departure_airport: _Optional[str] = ..., arrival_airport: _Optional[str] = ..., bounding_box: _Optional[_Union[BoundingBox, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class FlightSummary(_message.Message):
    __slots__ = ("flight_id", "airline", "flight_number", "departure_airport", "arrival_airport", "icao24", "callsign", "first_seen", "last_seen", "points")
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    AIRLINE_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DEPARTURE_AIRPORT_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_AIRPORT_FIELD_NUMBER: _ClassVar[int]
    ICAO24_FIELD_NUMBER: _ClassVar[int]
    CALLSIGN_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    airline: str
    flight_number: str
    departure_airport: str
    arrival_airport: str
    icao24: str
    callsign: str
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    points: int
    def __init__(self, flight_id: _Optional[str] = ..., airline: _Optional[str] = ..., flight_number: _Optional[str] = ..., departure_airport: _Optional[str] = ..., arrival_airport: _Optional[str] = ..., icao24: _Optional[str] = ..., callsign: _Optional[str] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., points: _Optional[int] = ...) -> None: ...

class ListFlightsResponse(_message.Message):
    __slots__ = ("flights", "next_page_token")
    FLIGHTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flights: _containers.RepeatedCompositeFieldContainer[FlightSummary]
    next_page_token: str
    def __init__(self, flights: _Optional[_Iterable[_Union[FlightSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetFlightSummaryRequest(_message.Message):
    __slots__ = ("flight_id",)
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    def __init__(self, flight_id: _Optional[str] = ...) -> None: ...

class FlightDay(_message.Message):
    __slots__ = ("day", "first_seen", "last_seen", "points", "max_altitude", "max_airspeed", "bounding_box")
    DAY_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    MAX_ALTITUDE_FIELD_NUMBER: _ClassVar[int]
    MAX_AIRSPEED_FIELD_NUMBER: _ClassVar[int]
    BOUNDING_BOX_FIELD_NUMBER: _ClassVar[int]
    day: str
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    points: int
    max_altitude: int
    max_airspeed: int
    bounding_box: BoundingBox
    def __init__(self, day: _Optional[str] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., points: _Optional[int] = ..., max_altitude: _Optional[int] = ..., max_airspeed: _Optional[int] = ..., bounding_box: _Optional[_Union[BoundingBox, _Mapping]] = ...) -> None: ...

class GetFlightSummaryResponse(_message.Message):
    __slots__ = ("flight", "days")
    FLIGHT_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    flight: FlightSummary
    days: _containers.RepeatedCompositeFieldContainer[FlightDay]
    def __init__(self, flight: _Optional[_Union[FlightSummary, _Mapping]] = ..., days: _Optional[_Iterable[_Union[FlightDay, _Mapping]]] = ...) -> None: ...
