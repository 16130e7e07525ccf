"""moto's server app for the emulator tests: one request at a time, per-client
counts of the AWS operations it was asked for, throttling on request, and an
optional network delay.

Usage: python moto_server.py PORT [--delay-ms MS]  (with moto[server]
installed; scripts/test.sh runs it from .venv).

One request at a time: moto's own `moto_server` handles requests on many
threads without a lock, so two concurrent UpdateItem calls on one item can
interleave (both read the old list, one append is lost: seen 2 of 64 lost).
DynamoDB applies each write to an item atomically, so this serves moto's app
behind a lock: requests still arrive concurrently, each is applied whole, as
DynamoDB does.

Call counts: every signed request is counted under the access key id of its
SigV4 `Credential=AKID/date/region/service/aws4_request`, as
`service:Operation` (`ssm:GetParametersByPath`, `dynamodb:Query`,
`sts:GetCallerIdentity`). A process given its own AWS_ACCESS_KEY_ID is thus
counted exactly while other clients use the emulator. These counts are HTTP
requests: an SDK retry counts twice.

  GET    /__counts/AKID   -> 200 {"ssm:GetParametersByPath": 3, ...}
  DELETE /__counts/AKID   -> 204, that key's counts forgotten

Throttling: requests of an access key (only those of one `service:Operation`
if given) are answered `ThrottlingException` ("Rate exceeded", HTTP 400, as
AWS answers a client over its rate) instead of reaching moto: the next N of
them (count=N), or those beyond R per second (rate=R: a bucket of R requests
refilled at R per second, as a service quota works). Throttled requests are
counted like any other.

  POST   /__throttle/AKID?count=N[&operation=ssm:PutParameter]  -> 204
  POST   /__throttle/AKID?rate=R[&operation=ssm:PutParameter]   -> 204
  DELETE /__throttle/AKID                                       -> 204, forgotten

Delay (--delay-ms MS): every AWS request is answered MS milliseconds later,
like a service a network round trip away. The wait happens outside the lock
that serialises moto, so concurrent requests wait side by side, as they do on
a network; only moto's own work is one at a time. It can be changed while
the server runs:

  PUT    /__delay?ms=MS                                         -> 204
  PUT    /__delay/AKID?ms=MS    -> 204, only that key's requests (added to the above)

These /__ paths are answered here and never reach moto.

Item size: moto 5.2.5 checks an item's size when an attribute is set by
adding the new value to the whole item, the attribute's old value included,
so replacing an attribute of an item over about 200 KB fails (an UpdateItem
that appends one deployment to a 300 KB release). DynamoDB limits the item
as it is after the update; `item_size_after_update` makes moto do so.
"""

import argparse
import io
import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from urllib.parse import parse_qs, unquote

from werkzeug.serving import run_simple
from moto import backends
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.utilities import bytesize
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

COUNTS_PREFIX = "/__counts/"
THROTTLE_PREFIX = "/__throttle/"
DELAY_PATH = "/__delay"
# Credential=AKID/20240101/eu-west-1/ssm/aws4_request
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/,\s]*/[^/,\s]*/([^/,\s]+)/")
# Smithy RPC v2 CBOR paths: /service/Name/operation/Op
RPC_V2_PATH = re.compile(r"^/service/[^/]+/operation/([^/]+)$")
FORM = "application/x-www-form-urlencoded"


def item_size_after_update(self, key, value):
    """moto's LimitedSizeDict.__setitem__, counting a replaced attribute's
    old value out (moto's limit and size rules otherwise unchanged)."""
    def size(part):
        if type(part) is dynamo_type.DynamoType:
            return part.size()
        return bytesize(str(part))

    total = sum(size(k) + size(v) for k, v in self.items() if k != key)
    if total + bytesize(key) + size(value) > 405000:
        raise ItemSizeTooLarge
    dict.__setitem__(self, key, value)


dynamo_type.LimitedSizeDict.__setitem__ = item_size_after_update

arguments = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
arguments.add_argument("port", type=int)
arguments.add_argument("--delay-ms", type=float, default=0.0,
                       help="answer every AWS request this much later")
options = arguments.parse_args()
if options.delay_ms < 0:
    arguments.error("--delay-ms must be 0 or more")
port = options.port
delay = options.delay_ms / 1000.0
# Per access key, added to `delay`: one client a slow network away.
key_delays = {}
os.environ.setdefault("MOTO_PORT", str(port))
# moto lists its own package directory (a stat per service) on every request
# to route it; the list cannot change while the server runs, so it is read
# once. This was about half of moto's time per request.
_moto_modules = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _moto_modules
app = DomainDispatcherApplication(create_backend_app)
moto_lock = threading.Lock()
counts_lock = threading.Lock()
counts = {}
# access key id -> {"operation": "service:Operation" or None, and either
# "count": requests still to throttle, or "rate", "tokens", "time"}
throttles = {}


def client_and_service(environ):
    """(access key id, signing service) of a SigV4 request, or None."""
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        # Presigned: the credential is in the query string.
        query = parse_qs(environ.get("QUERY_STRING", ""))
        credential = query.get("X-Amz-Credential", [""])[0]
        match = CREDENTIAL.search("Credential=" + credential)
    if match is None:
        return None
    return match.group(1), match.group(2)


def buffered_form(environ):
    """The form fields of a query-protocol body (STS, IAM). The body is read
    here, so it is put back for moto as an in-memory stream."""
    if not environ.get("CONTENT_TYPE", "").startswith(FORM):
        return {}
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    body = stream.read(int(length)) if length.isdigit() else stream.read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return parse_qs(body.decode("utf-8", "replace"))


def operation(environ):
    """The operation a request asks for: X-Amz-Target for JSON protocols
    (DynamoDB, SSM, ECS), the Action field for query protocols (STS, IAM)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    action = buffered_form(environ).get("Action") or parse_qs(
        environ.get("QUERY_STRING", "")
    ).get("Action")
    if action:
        return action[0]
    rpc = RPC_V2_PATH.match(environ.get("PATH_INFO", ""))
    if rpc:
        return rpc.group(1)
    return "(unknown)"


def count(environ):
    """Counts a signed request under its access key; returns (key, name), or
    None for an unsigned request."""
    client = client_and_service(environ)
    if client is None:
        return None
    key, service = client
    name = f"{service}:{operation(environ)}"
    with counts_lock:
        counts.setdefault(key, Counter())[name] += 1
    return key, name


def take_throttle(key, name):
    """Whether this request of `key` is to be throttled."""
    with counts_lock:
        throttle = throttles.get(key)
        if throttle is None or throttle["operation"] not in (None, name):
            return False
        if "count" in throttle:
            throttle["count"] -= 1
            if throttle["count"] <= 0:
                del throttles[key]
            return True
        now = time.monotonic()
        rate = throttle["rate"]
        throttle["tokens"] = min(rate, throttle["tokens"] + (now - throttle["time"]) * rate)
        throttle["time"] = now
        if throttle["tokens"] >= 1:
            throttle["tokens"] -= 1
            return False
        return True


def answer_throttled(environ, start_response):
    """ThrottlingException as the service's protocol spells it: JSON for
    X-Amz-Target protocols (SSM, DynamoDB), XML for query ones (STS)."""
    request_id = str(uuid.uuid4())
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": "ThrottlingException",
                           "message": "Rate exceeded"}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"),
                   ("x-amzn-ErrorType", "ThrottlingException"),
                   ("x-amzn-RequestId", request_id)]
    else:
        body = ("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                "<Message>Rate exceeded</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    start_response("400 Bad Request", headers)
    return [body]


def answer_throttle(environ, start_response):
    key = unquote(environ.get("PATH_INFO", "")[len(THROTTLE_PREFIX):])
    method = environ.get("REQUEST_METHOD", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if method == "POST":
        throttle = {"operation": query.get("operation", [None])[0]}
        try:
            if "count" in query:
                throttle["count"] = int(query["count"][0])
                valid = throttle["count"] >= 1 and "rate" not in query
            else:
                rate = float(query.get("rate", [""])[0])
                throttle.update(rate=rate, tokens=rate, time=time.monotonic())
                valid = rate > 0
        except ValueError:
            valid = False
        if not valid:
            return answer_text(start_response, "400 Bad Request",
                               "count=N (N >= 1) or rate=R (R > 0) is required\n")
        with counts_lock:
            throttles[key] = throttle
        start_response("204 No Content", [("Content-Length", "0")])
        return [b""]
    if method == "DELETE":
        with counts_lock:
            throttles.pop(key, None)
        start_response("204 No Content", [("Content-Length", "0")])
        return [b""]
    return answer_text(start_response, "405 Method Not Allowed",
                       "POST or DELETE /__throttle/ACCESS_KEY_ID\n",
                       [("Allow", "POST, DELETE")])


def answer_delay(environ, start_response):
    global delay
    if environ.get("REQUEST_METHOD", "") != "PUT":
        return answer_text(start_response, "405 Method Not Allowed",
                           "PUT /__delay[/ACCESS_KEY_ID]?ms=MS\n", [("Allow", "PUT")])
    try:
        ms = float(parse_qs(environ.get("QUERY_STRING", "")).get("ms", [""])[0])
    except ValueError:
        ms = -1
    if ms < 0:
        return answer_text(start_response, "400 Bad Request", "ms=MS (MS >= 0) is required\n")
    key = unquote(environ.get("PATH_INFO", "")[len(DELAY_PATH) + 1:])
    if key:
        with counts_lock:
            key_delays[key] = ms / 1000.0
    else:
        delay = ms / 1000.0
    start_response("204 No Content", [("Content-Length", "0")])
    return [b""]


def answer_text(start_response, status, text, headers=()):
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body))), *headers])
    return [body]


def answer_counts(environ, start_response):
    key = unquote(environ.get("PATH_INFO", "")[len(COUNTS_PREFIX):])
    method = environ.get("REQUEST_METHOD", "")
    if method == "GET":
        with counts_lock:
            snapshot = dict(sorted(counts.get(key, Counter()).items()))
        body = json.dumps(snapshot).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if method == "DELETE":
        with counts_lock:
            counts.pop(key, None)
        start_response("204 No Content", [("Content-Length", "0")])
        return [b""]
    body = b"GET or DELETE /__counts/ACCESS_KEY_ID\n"
    start_response("405 Method Not Allowed", [("Allow", "GET, DELETE"),
                                              ("Content-Length", str(len(body)))])
    return [body]


def serve(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith(COUNTS_PREFIX):
        return answer_counts(environ, start_response)
    if path.startswith(THROTTLE_PREFIX):
        return answer_throttle(environ, start_response)
    if path == DELAY_PATH or path.startswith(DELAY_PATH + "/"):
        return answer_delay(environ, start_response)
    counted = count(environ)
    with counts_lock:
        wait = delay + (key_delays.get(counted[0], 0.0) if counted else 0.0)
    if wait:
        # Outside moto_lock: concurrent requests overlap, as on a network.
        time.sleep(wait)
    if counted is not None and take_throttle(*counted):
        return answer_throttled(environ, start_response)
    with moto_lock:
        result = app(environ, start_response)
        try:
            return [b"".join(result)]
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


run_simple("127.0.0.1", port, serve, threaded=True,
           request_handler=MotoRequestHandler)
