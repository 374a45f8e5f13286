"""CloudWatch over RPC-v2 CBOR in front of moto_server, which speaks only the Query protocol.

aws-sdk-cloudwatch 1.100 and later speak only RPC-v2 CBOR. This proxy takes those requests,
replays each as the Query request botocore would make for the same operation (the same service
model describes both protocols), and answers moto's XML back as CBOR. So CloudWatch state stays
in moto next to SNS, SQS, EventBridge and EMR (same account, same ARNs, same
/moto-api/data.json), with moto's full alarm model: metric math queries and percentiles
round-trip, which ministack 1.5 does not (it drops `Metrics` and reports `Statistic: Average` for
percentile alarms; see the README's testing notes).

moto 5.2 has no composite alarms (PutCompositeAlarm answers 500): this proxy keeps them itself
(see "Composite alarms" below), so the controller's composite alarms can be tested end to end.

moto ignores `MaxRecords`; this proxy pages DescribeAlarms as CloudWatch does (at most
`MaxRecords` alarms per page, 50 by default, 1 to 100 allowed, alarms in name order, the token
naming the next page's first alarm), so tests and benchmarks count real pages; a listing's
later pages are cut from the answer the first page got (see `describe_alarms`).

Runs with the python of moto's virtualenv: it needs only botocore, which moto depends on.

    python cloudwatch_cbor.py --port PORT --upstream http://127.0.0.1:MOTO_PORT

`GET /ping` answers 200 once it serves.
"""

import argparse
import datetime
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.parsers
import botocore.serialize
import botocore.session

MODEL = botocore.session.get_session().get_service_model("cloudwatch")
PATH_PREFIX = "/service/GraniteServiceVersion20100801/operation/"
DEFAULT_PAGE = 50
MAX_PAGE = 100
# Headers moto reads to pick the service, region and account; the rest are the CBOR request's.
FORWARDED_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token", "user-agent")


# --- CBOR encoding (RFC 8949): the subset the SDK reads in CloudWatch answers. ---------------


def _head(major, length):
    if length < 24:
        return bytes([major << 5 | length])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if length < 1 << (8 * size):
            return bytes([major << 5 | info]) + length.to_bytes(size, "big")
    raise ValueError(f"CBOR length too large: {length}")


def cbor(value):
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _head(3, len(data)) + data
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, datetime.datetime):
        # Tag 1: epoch seconds, as smithy timestamps travel in RPC-v2 CBOR.
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return b"\xc1" + cbor(value.timestamp())
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b"".join(cbor(item) for item in value)
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if v is not None]
        return _head(5, len(items)) + b"".join(cbor(k) + cbor(v) for k, v in items)
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


# --- The translation. -------------------------------------------------------------------------


class Answer(Exception):
    """A CloudWatch error answered without asking moto."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def decode_request(operation, body):
    """The request's parameters, typed by the operation's input shape."""
    shape = MODEL.operation_model(operation).input_shape
    if not body or shape is None:
        return {}
    parsed = botocore.parsers.RpcV2CBORParser().parse(
        {"body": body, "headers": {}, "status_code": 200}, shape
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


def call_moto(upstream, operation, params, headers):
    """Sends `params` to moto as a Query request; returns (status, parsed answer)."""
    operation_model = MODEL.operation_model(operation)
    request = botocore.serialize.QuerySerializer().serialize_to_request(params, operation_model)
    body = urllib.parse.urlencode(request["body"]).encode()
    forwarded = {k: v for k, v in headers.items() if k.lower() in FORWARDED_HEADERS}
    forwarded["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    http_request = urllib.request.Request(upstream + "/", data=body, headers=forwarded, method="POST")
    try:
        with urllib.request.urlopen(http_request, timeout=60) as response:
            status, answer_headers, answer = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, answer = error.code, dict(error.headers), error.read()
    parser = botocore.parsers.QueryParser()
    parsed = parser.parse(
        {"body": answer, "headers": answer_headers, "status_code": status},
        operation_model.output_shape,
    )
    parsed.pop("ResponseMetadata", None)
    return status, parsed


# moto answers every DescribeAlarms with the complete listing, so cutting each page from a fresh
# answer costs a full listing per page: 100 pages of 10,000 alarms took twenty minutes, where
# CloudWatch pages on its side. The rest of a listing is therefore kept under the NextToken it
# was answered with, for the next page, until any other operation (a write may have changed it) or
# LISTING_TTL seconds. Pages read from it are what CloudWatch would answer: they start at the token.
LISTING_TTL = 60.0
LISTINGS = {}
LISTINGS_LOCK = threading.Lock()
# Operations that change nothing: they leave the kept listings alone.
READS = ("Describe", "Get", "List")


def _listing_key(params, headers, token):
    return (_region(headers), repr(sorted(params.items())), token)


def _forget_listings(operation):
    if not operation.startswith(READS):
        with LISTINGS_LOCK:
            LISTINGS.clear()


def _kept_listing(key):
    with LISTINGS_LOCK:
        kept = LISTINGS.pop(key, None)
    if kept is None or time.monotonic() - kept[0] > LISTING_TTL:
        return None
    return kept[1]


def describe_alarms(upstream, params, headers):
    """One page of DescribeAlarms, cut from moto's complete (unpaged) answer."""
    size = params.pop("MaxRecords", None)
    if size is None:
        size = DEFAULT_PAGE
    if not 1 <= size <= MAX_PAGE:
        raise Answer(
            400,
            "ValidationError",
            f"1 validation error detected: Value '{size}' at 'maxRecords' failed to satisfy "
            f"constraint: Member must have value between 1 and {MAX_PAGE}",
        )
    token = params.pop("NextToken", None)
    status = 200
    listing = _kept_listing(_listing_key(params, headers, token)) if token else None
    if listing is None:
        composites = composites_matching(params)
        types = params.get("AlarmTypes")
        moto_params = {k: v for k, v in params.items() if k != "AlarmTypes"}
        status, parsed = call_moto(upstream, "DescribeAlarms", moto_params, headers)
        if status >= 300:
            return status, parsed
        if types is not None and "MetricAlarm" not in types:
            parsed["MetricAlarms"] = []
        parsed["CompositeAlarms"] = composites
        listing = sorted(
            [(a["AlarmName"], 0, a) for a in parsed.get("MetricAlarms", [])]
            + [(a["AlarmName"], 1, a) for a in parsed.get("CompositeAlarms", [])],
            key=lambda entry: entry[:2],
        )
        # As on CloudWatch, a page starts at the first name at or after the token, so alarms
        # created or deleted between two pages shift nothing.
        if token:
            listing = [entry for entry in listing if entry[0] >= token]
    page = listing[:size]
    answer = {
        "MetricAlarms": [a for _, kind, a in page if kind == 0],
        "CompositeAlarms": [a for _, kind, a in page if kind == 1],
    }
    if len(listing) > size:
        answer["NextToken"] = listing[size][0]
        with LISTINGS_LOCK:
            now = time.monotonic()
            for key in [k for k, (at, _) in LISTINGS.items() if now - at > LISTING_TTL]:
                del LISTINGS[key]
            LISTINGS[_listing_key(params, headers, answer["NextToken"])] = (
                time.monotonic(), listing[size:])
    return status, answer


# --- Composite alarms, which moto 5.2 does not implement (PutCompositeAlarm answers 500). -------
#
# The translator keeps them itself, as CloudWatch would: PutCompositeAlarm checks that the alarms
# its rule names exist, DescribeAlarms returns them (only when `AlarmTypes` asks for them, as
# CloudWatch does) in the same pages as moto's metric alarms, DeleteAlarms, SetAlarmState and the
# tagging operations reach them by name or ARN. They are not evaluated: their state changes only
# by SetAlarmState.

COMPOSITES = {}
COMPOSITE_TAGS = {}
COMPOSITES_LOCK = threading.Lock()
ACCOUNT = "123456789012"


def _region(headers):
    # Credential=AKID/20260101/us-east-1/monitoring/aws4_request
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) > 2 else "us-east-1"


def _rule_names(rule):
    return rule.split('"')[1::2]


def put_composite_alarm(upstream, params, headers):
    name = params["AlarmName"]
    named = _rule_names(params.get("AlarmRule", ""))
    _, found = call_moto(upstream, "DescribeAlarms", {"AlarmNames": named}, headers) if named else (200, {})
    existing = {a["AlarmName"] for a in found.get("MetricAlarms", [])}
    with COMPOSITES_LOCK:
        existing |= set(COMPOSITES)
        missing = [n for n in named if n not in existing]
        if missing:
            raise Answer(400, "ValidationError",
                         f"Could not save the composite alarm as alarms {missing} in the alarm rule do not exist")
        now = datetime.datetime.now(datetime.timezone.utc)
        arn = f"arn:aws:cloudwatch:{_region(headers)}:{ACCOUNT}:alarm:{name}"
        old = COMPOSITES.get(name)
        COMPOSITES[name] = {
            "AlarmName": name,
            "AlarmArn": arn,
            "AlarmDescription": params.get("AlarmDescription"),
            "AlarmRule": params.get("AlarmRule"),
            "ActionsEnabled": params.get("ActionsEnabled", True),
            "AlarmActions": params.get("AlarmActions", []),
            "OKActions": params.get("OKActions", []),
            "InsufficientDataActions": params.get("InsufficientDataActions", []),
            "AlarmConfigurationUpdatedTimestamp": now,
            # CloudWatch keeps the state of an alarm it updates.
            "StateValue": old["StateValue"] if old else "INSUFFICIENT_DATA",
            "StateReason": old["StateReason"] if old else "Unchecked: Initial alarm creation",
            "StateUpdatedTimestamp": old["StateUpdatedTimestamp"] if old else now,
        }
        if old is None:
            # As for metric alarms, tags are set only on creation.
            COMPOSITE_TAGS[arn] = {t["Key"]: t.get("Value", "") for t in params.get("Tags", [])}
    return 200, {}


def composites_matching(params):
    """The composites DescribeAlarms `params` select (before paging)."""
    if "CompositeAlarm" not in params.get("AlarmTypes", []):
        return []
    prefix = params.get("AlarmNamePrefix")
    names = params.get("AlarmNames")
    state = params.get("StateValue")
    with COMPOSITES_LOCK:
        return [dict(c) for n, c in sorted(COMPOSITES.items())
                if (prefix is None or n.startswith(prefix)) and (not names or n in names)
                and (state is None or c["StateValue"] == state)]


def delete_alarms(upstream, params, headers):
    names = params.get("AlarmNames", [])
    with COMPOSITES_LOCK:
        composites = [n for n in names if n in COMPOSITES]
        for name in composites:
            COMPOSITE_TAGS.pop(COMPOSITES.pop(name)["AlarmArn"], None)
    rest = [n for n in names if n not in composites]
    if not rest:
        return 200, {}
    return call_moto(upstream, "DeleteAlarms", {**params, "AlarmNames": rest}, headers)


def composite_operation(operation, params):
    """Answers an operation on a composite alarm, or None when it is not about one."""
    with COMPOSITES_LOCK:
        if operation == "SetAlarmState" and params.get("AlarmName") in COMPOSITES:
            composite = COMPOSITES[params["AlarmName"]]
            composite.update(StateValue=params["StateValue"], StateReason=params["StateReason"],
                             StateUpdatedTimestamp=datetime.datetime.now(datetime.timezone.utc))
            return 200, {}
        arn = params.get("ResourceARN")
        if arn not in COMPOSITE_TAGS:
            return None
        tags = COMPOSITE_TAGS[arn]
        if operation == "ListTagsForResource":
            return 200, {"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
        if operation == "TagResource":
            tags.update({t["Key"]: t.get("Value", "") for t in params.get("Tags", [])})
            return 200, {}
        if operation == "UntagResource":
            for key in params.get("TagKeys", []):
                tags.pop(key, None)
            return 200, {}
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/ping":
            self._send(200, b"ok", {"Content-Type": "text/plain"})
        else:
            self._send(404, b"not found", {"Content-Type": "text/plain"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if not self.path.startswith(PATH_PREFIX):
            self._error(404, "UnknownOperationException", f"not a CloudWatch path: {self.path}")
            return
        operation = self.path[len(PATH_PREFIX):].split("?")[0]
        if operation not in MODEL.operation_names:
            self._error(404, "UnknownOperationException", f"unknown operation {operation}")
            return
        headers = dict(self.headers.items())
        _forget_listings(operation)
        try:
            params = decode_request(operation, body)
            upstream = self.server.upstream
            if operation == "DescribeAlarms":
                status, answer = describe_alarms(upstream, params, headers)
            elif operation == "PutCompositeAlarm":
                status, answer = put_composite_alarm(upstream, params, headers)
            elif operation == "DeleteAlarms":
                status, answer = delete_alarms(upstream, params, headers)
            else:
                status, answer = composite_operation(operation, params) or call_moto(
                    upstream, operation, params, headers
                )
        except Answer as answer:
            self._error(answer.status, answer.code, answer.message)
            return
        except Exception as error:  # noqa: BLE001 - the SDK must see a 500, not a dropped socket
            self._error(500, "InternalFailure", f"{type(error).__name__}: {error}")
            return
        if status >= 300:
            error = answer.get("Error", {})
            self._error(status, error.get("Code") or "InternalFailure", error.get("Message") or "",
                        error.get("Type") or "Sender")
            return
        self._send(status, cbor(answer), {})

    def _error(self, status, code, message, kind="Sender"):
        # The SDK reads the code from `x-amzn-query-error` (CloudWatch is query-compatible) and
        # falls back to `__type`.
        body = cbor({"__type": f"com.amazonaws.cloudwatch#{code}", "message": message})
        self._send(status, body, {"x-amzn-query-error": f"{code};{kind}"})

    def _send(self, status, body, headers):
        self.send_response(status)
        headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor", **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        sys.stderr.write("cloudwatch-cbor: " + (format % args) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="moto_server's base URL")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.upstream = args.upstream.rstrip("/")
    server.serve_forever()


if __name__ == "__main__":
    main()
