"""BASELINE ONLY: the seed's gRPC server, rebuilt as the seed described it, for bench/api.py.

Not part of the product. Per GetFlightData call it opens a new psycopg connection, runs the
seed's query (every point of the flight joined with its metadata, ordered by time), builds one
FlightData per row and answers NOT_FOUND when there are none; grpc.server with a
ThreadPoolExecutor(max_workers=10). Its code is generated from the seed's .proto by the
benchmark, into a temporary folder.

Usage: seed_server.py GENERATED_DIR DATABASE_URL   (prints "READY <port>", serves until killed)
"""

import importlib
import sys
from concurrent import futures

import grpc
import psycopg

# The seed's query.
SEED_QUERY = """
    SELECT d.flight_id, d.latitude, d.longitude, d.altitude, d.airspeed, d."timestamp",
           m.airline, m.flight_number, m.departure_airport, m.arrival_airport
    FROM flight_data d
    LEFT JOIN flight_metadata m ON m.flight_id = d.flight_id
    WHERE d.flight_id = %s
    ORDER BY d."timestamp"
"""


class SeedFlightDataService:
    def __init__(self, url, messages):
        self.url = url
        self.pb = messages

    def GetFlightData(self, request, context):
        with psycopg.connect(self.url) as conn:
            rows = conn.execute(SEED_QUERY, (request.flight_id,)).fetchall()
        if not rows:
            context.abort(grpc.StatusCode.NOT_FOUND, "Flight not found")
        return self.pb.FlightDataResponse(
            data=[
                self.pb.FlightData(
                    flight_id=r[0],
                    latitude=r[1],
                    longitude=r[2],
                    altitude=r[3],
                    airspeed=r[4],
                    timestamp=r[5].isoformat(),
                    airline=r[6],
                    flight_number=r[7],
                    departure_airport=r[8],
                    arrival_airport=r[9],
                )
                for r in rows
            ]
        )


def main():
    sys.path.insert(0, sys.argv[1])
    messages = importlib.import_module("flight_pb2")
    services = importlib.import_module("flight_pb2_grpc")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=10),
        options=[("grpc.max_send_message_length", 64 * 1024 * 1024)],
    )
    services.add_FlightDataServiceServicer_to_server(
        SeedFlightDataService(sys.argv[2], messages), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"READY {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
