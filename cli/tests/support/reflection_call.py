"""A gRPC client that knows no callmesh proto: everything it sends and reads is resolved through
the server's reflection service (v1alpha, as grpcio-reflection speaks it).

    reflection_call.py HOST:PORT list
    reflection_call.py HOST:PORT call package.Service/Method '{"json": "request"}'

Calls carry `authorization: Bearer $CALLMESH_TOKEN` when that variable is set; reflection itself
needs no token.

Prints one JSON object: {"services": [...]}, {"ok": {...response...}} or
{"error": {"code": "INVALID_ARGUMENT", "message": "..."}}.
"""

import json
import os
import sys

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> int:
    address, command = sys.argv[1], sys.argv[2]
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        if command == "list":
            print(json.dumps({"services": sorted(database.get_services())}))
            return 0
        full_method, body = sys.argv[3], sys.argv[4]
        service_name, method_name = full_method.split("/")
        pool = DescriptorPool(database)
        method = pool.FindServiceByName(service_name).methods_by_name[method_name]
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)
        request = json_format.Parse(body, request_type())
        call = channel.unary_unary(
            f"/{service_name}/{method_name}",
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        try:
            token = os.environ.get("CALLMESH_TOKEN")
            metadata = [("authorization", f"Bearer {token}")] if token else None
            response = call(request, timeout=10, metadata=metadata)
        except grpc.RpcError as error:
            print(json.dumps({"error": {"code": error.code().name, "message": error.details()}}))
            return 0
        print(json.dumps({"ok": json_format.MessageToDict(response, preserving_proto_field_name=True)}))
        return 0


if __name__ == "__main__":
    sys.exit(main())
