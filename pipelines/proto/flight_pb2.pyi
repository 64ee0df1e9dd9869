from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FlightData(_message.Message):
    __slots__ = ("flight_id", "latitude", "longitude", "altitude", "airspeed", "timestamp", "airline", "flight_number", "departure_airport", "arrival_airport")
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
    def __init__(self, flight_id: _Optional[str] = ..., latitude: _Optional[float] = ..., longitude: _Optional[float] = ..., altitude: _Optional[int] = ..., airspeed: _Optional[int] = ..., timestamp: _Optional[str] = ..., airline: _Optional[str] = ..., flight_number: _Optional[str] = ..., departure_airport: _Optional[str] = ..., arrival_airport: _Optional[str] = ...) -> None: ...

class FlightDataRequest(_message.Message):
    __slots__ = ("flight_id",)
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    def __init__(self, flight_id: _Optional[str] = ...) -> None: ...

class FlightDataResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[FlightData]
    def __init__(self, data: _Optional[_Iterable[_Union[FlightData, _Mapping]]] = ...) -> None: ...
