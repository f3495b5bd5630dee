"""Rewrapping a gRPC method handler's behaviour, for server interceptors that act around every
kind of RPC the same way (peers.py, call_limits.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]


def rewrap(handler: grpc.RpcMethodHandler, unary: Wrap, streaming: Wrap) -> grpc.RpcMethodHandler:
    """`handler` with its behaviour wrapped: by `unary` for single-response RPCs, by `streaming`
    for response streams; its (de)serializers kept."""
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **serializers)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **serializers)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **serializers)
    return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **serializers)
