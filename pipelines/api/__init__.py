"""The gRPC API: server, request validation, wire encoding, client and authentication."""
