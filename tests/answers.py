"""The full answer of a gRPC call, for comparing what two callers (or two cases) are told."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

Answer = tuple[str, str, str]  # status code, details, response fields (JSON)


def answer_of(call: Callable[[], Any], hide: Iterable[str] = ()) -> Answer:
    """Status code, details and every response field (defaults included) of ``call()``, with
    each text of ``hide`` (the serial the request named, ...) replaced by ``<hidden>``."""
    try:
        response = call()
    except grpc.RpcError as exc:
        code, details, fields = exc.code().name, exc.details() or "", ""
    else:
        code, details = "OK", ""
        fields = json.dumps(_fields(response), sort_keys=True, ensure_ascii=False)
    for text in hide:
        details = details.replace(text, "<hidden>")
        fields = fields.replace(text, "<hidden>")
    return code, details, fields


def _fields(response: Any) -> Any:
    if isinstance(response, Message):
        return json_format.MessageToDict(response, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
    return [_fields(item) for item in response]  # a response stream
