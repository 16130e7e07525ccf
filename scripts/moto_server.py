"""moto's server app for the emulator tests: one request at a time, and
per-client counts of the AWS operations it was asked for.

Usage: python moto_server.py PORT  (with moto[server] installed; scripts/test.sh
runs it from .venv).

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

These paths are answered here and never reach moto.

Item size: moto 5.2.5 checks an item's size when an attribute is set by
adding the new value to the whole item, the attribute's old value included,
so replacing an attribute of an item over about 200 KB fails (an UpdateItem
that appends one deployment to a 300 KB release). DynamoDB limits the item
as it is after the update; `item_size_after_update` makes moto do so.
"""

import io
import json
import os
import re
import sys
import threading
from collections import Counter
from urllib.parse import parse_qs, unquote

from werkzeug.serving import run_simple
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.utilities import bytesize
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

COUNTS_PREFIX = "/__counts/"
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

port = int(sys.argv[1])
os.environ.setdefault("MOTO_PORT", str(port))
app = DomainDispatcherApplication(create_backend_app)
moto_lock = threading.Lock()
counts_lock = threading.Lock()
counts = {}


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
    client = client_and_service(environ)
    if client is None:
        return
    key, service = client
    name = f"{service}:{operation(environ)}"
    with counts_lock:
        counts.setdefault(key, Counter())[name] += 1


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
    if environ.get("PATH_INFO", "").startswith(COUNTS_PREFIX):
        return answer_counts(environ, start_response)
    count(environ)
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
