"""A client as the seed's users wrote it: code generated from the seed's .proto, nothing else.

Usage: seed_client.py GENERATED_DIR HOST:PORT FLIGHT_ID. Prints each point as a JSON line
(proto field names, defaults omitted: the JSON Lines drop format), or the status and exits 2.
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

import flight_data_pb2 as flight_pb2
import flight_data_pb2_grpc as flight_pb2_grpc
import grpc
from google.protobuf.json_format import MessageToDict


def main() -> None:
    target, flight_id = sys.argv[2], sys.argv[3]
    with grpc.insecure_channel(target) as channel:
        stub = flight_pb2_grpc.FlightDataServiceStub(channel)
        try:
            response = stub.GetFlightData(
                flight_pb2.FlightDataRequest(flight_id=flight_id), timeout=30
            )
        except grpc.RpcError as exc:
            print(exc.code().name, exc.details())
            sys.exit(2)
    for point in response.flight_data:
        print(json.dumps(MessageToDict(point, preserving_proto_field_name=True)))


if __name__ == "__main__":
    main()
