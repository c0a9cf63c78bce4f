"""moto 5.2.5 server for the kubectl-ecr test bed: ECR answers closer to the real service.

Usage:  <venv>/bin/python moto_server.py PORT
        Serves every AWS service moto implements on http://127.0.0.1:PORT (loopback only).
        PORT 0 picks a free port. Once listening, one line goes to stdout:
            moto listening on http://127.0.0.1:<port>

Changes to moto's ECR:
  1. Token expiry: ecr:GetAuthorizationToken answers expiresAt = now + TTL instead of moto's fixed
     2015-01-01 (see "The TTL" below).
  2. Region-specific passwords: the decoded authorizationToken is "AWS:<registryId>-<region>-auth-token"
     (moto alone gives "AWS:<registryId>-auth-token" in every region). <region> is the region moto
     sees for the request: the one in the SigV4 credential scope, i.e. the region the client signed for
     (with AWS_ENDPOINT_URL pointing here, that is the SDK's configured region). So real ECR's "every
     region hands out its own token" holds, and a test can tell which region's token a registry host
     got. Same region, same registry => same password, call after call.
  3. JSON errors for ECR: with IAM enforcement on (see below), moto answers an ECR request that fails
     authentication or authorization with its IAM/STS-style XML <ErrorResponse> (403), which
     @aws-sdk/client-ecr cannot parse (SyntaxError). For requests whose X-Amz-Target starts with
     "AmazonEC2ContainerRegistry_V20150921." such an XML error is rewritten as real ECR sends it:
     Content-Type application/x-amz-json-1.1, header x-amzn-ErrorType, body {"__type", "message"};
     same HTTP status. Codes: AccessDenied -> AccessDeniedException (message "User: <arn> is not
     authorized to perform: ecr:<Action> on resource: *"; moto checks ECR actions against resource
     "*" only), InvalidClientTokenId (unknown access key) -> UnrecognizedClientException,
     SignatureDoesNotMatch (wrong secret) -> InvalidSignatureException, any other code kept as is.
     STS and IAM (query protocol: XML is what they really send) are left alone.

IAM policies. Where moto checks a request, only access keys of IAM users (or assumed roles) that
moto knows are accepted, the signature must match the secret key, and the action must be allowed by
the user's policies (moto evaluates Action and Effect; Resource and Condition hardly at all;
sts:GetCallerIdentity is always allowed, as in AWS). moto checks:
  - requests signed with an access key made by POST /testbed/iam-user (below): always, whatever the
    rest of the server does. Other keys (the test bed's "testing", any made-up id) stay unchecked, so
    tests sharing one server are not disturbed by a test's restricted user. (A testbed addition.)
  - every request, once INITIAL_NO_AUTH_ACTION_COUNT requests have been served (moto's setting;
    default: never): environment variable INITIAL_NO_AUTH_ACTION_COUNT=0 at start, or at run time
    POST /moto-api/reset-auth with body "0" (on) or "inf" (off) - moto's own endpoint. Then the test
    bed's "testing" key is refused too (ECR: UnrecognizedClientException).
Users for it (straight into moto's IAM backend: no signed IAM call, nothing counted towards
INITIAL_NO_AUTH_ACTION_COUNT, works whether or not moto checks everyone):
  - POST /testbed/iam-user  body {"userName": "U", "policy"?: <policy document, object or JSON
        string>, "region"?: R}: creates IAM user U (409 if it exists) in this server's account
        (MOTO_ACCOUNT_ID, default 123456789012), with the policy as inline policy "testbed" (none: the
        user may do nothing), and an access key. IAM users live per partition: the user is made in
        R's partition (default us-east-1, i.e. "aws"), and its key works for requests signed for any
        region of that partition (cn-north-1 and cn-northwest-1 need R in aws-cn). Answers
        {"userName", "arn", "accessKeyId", "secretAccessKey"}. Requests signed with that key are
        checked against the policy from then on (see above).

The TTL is 12 hours (43200 s, as real ECR gives) unless changed:
  - at start:   environment variable TESTBED_ECR_TOKEN_TTL_SECONDS (an integer, may be negative)
  - at run time, on this same server (looked up at every GetAuthorizationToken call):
      POST   /testbed/token-ttl   body {"seconds": N} or a bare integer N: the TTL for every caller,
                                  e.g. -60 for tokens that expired a minute ago
      POST   /testbed/token-ttl   body {"seconds": N, "accessKeyId": "K"}: the TTL for callers that sign
                                  with access key id K only (wins over the global one). Tests that run
                                  in parallel against one server each use their own AWS_ACCESS_KEY_ID
                                  (any made-up value works unless moto checks every request) and don't
                                  disturb each other.
      DELETE /testbed/token-ttl   everything back to the start value
      GET    /testbed/token-ttl   the current settings
    each answers {"seconds": <global TTL>, "byAccessKeyId": {"K": N, ...}}
  - GET /testbed/health -> "ok" (readiness probe).
POST /moto-api/reset (moto's own) clears moto's state (IAM users too: their keys are then refused
where checked) but not the TTL settings.

Everything else is moto as published: user "AWS", proxyEndpoint
"https://<registryId>.dkr.ecr.<region>.amazonaws.com" (also in aws-cn regions); default account
123456789012 (MOTO_ACCOUNT_ID changes it).
"""

import base64
import json
import os
import re
import signal
import sys
import threading
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

HOST = "127.0.0.1"
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
DEFAULT_TTL = 12 * 60 * 60
ECR_TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
ECR_JSON = "application/x-amz-json-1.1"
# moto's IAM/STS error codes -> what ECR (a JSON-protocol service) calls the same failure.
ECR_ERROR_CODES = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("usage: moto_server.py PORT", file=sys.stderr)
        sys.exit(2)
    port = int(sys.argv[1])

    start_ttl = int(os.environ.get("TESTBED_ECR_TOKEN_TTL_SECONDS", DEFAULT_TTL))
    state: dict = {"ttl": start_ttl, "by_key": {}}
    lock = threading.Lock()
    checked_keys: set[str] = set()  # access key ids made by /testbed/iam-user: always checked

    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import ActionResult
    from moto.ecr.responses import ECRResponse
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    original = ECRResponse.get_authorization_token

    def get_authorization_token(self: ECRResponse) -> ActionResult:
        result = original(self)
        # The access key id from the SigV4 header (moto's own get_access_key() only knows 20-character
        # AKIA-style ids).
        m = CREDENTIAL.search(self.headers.get("Authorization") or "")
        key = m.group(1) if m else None
        with lock:
            ttl = state["by_key"].get(key, state["ttl"])
        expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=ttl)
        data = result.result  # {"authorizationData": [{..., "expiresAt": datetime}]}
        for entry in data["authorizationData"]:  # type: ignore[index]
            entry["expiresAt"] = expires
            # moto: "AWS:<registryId>-auth-token" -> "AWS:<registryId>-<region>-auth-token"
            user, _, password = base64.b64decode(entry["authorizationToken"]).decode().partition(":")
            registry_id = password.removesuffix("-auth-token")
            token = f"{user}:{registry_id}-{self.region}-auth-token"
            entry["authorizationToken"] = base64.b64encode(token.encode()).decode()
        return result

    ECRResponse.get_authorization_token = get_authorization_token  # type: ignore[method-assign]

    original_authenticate = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self, iam_request_cls: type, resource: str = "*") -> None:
        # moto checks a request only once INITIAL_NO_AUTH_ACTION_COUNT requests have been served;
        # requests signed with a /testbed/iam-user key are checked in any case, exactly as moto would
        # (the body of moto 5.2.5's check, minus the count), and without counting.
        m = CREDENTIAL.search(self.headers.get("Authorization") or "")
        unchecked = ActionAuthenticatorMixin.request_count < moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
        if not (m and m.group(1) in checked_keys and unchecked):
            return original_authenticate(self, iam_request_cls, resource)
        if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return None
        path = self.raw_path
        query = urlparse(self.uri).query
        if query:
            path += "?" + query
        iam_request = iam_request_cls(
            account_id=self.current_account,
            method=self.method,
            path=path,
            data=self.data,
            body=self.raw_body,
            headers=self.headers,
            action=self._get_action(),
        )
        iam_request.check_signature()
        iam_request.check_action_permitted(resource)
        return None

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate  # type: ignore[method-assign]

    moto_app = DomainDispatcherApplication(create_backend_app)

    def ecr_app(environ, start_response):
        """moto for an ECR request, with an XML <ErrorResponse> turned into ECR's JSON error."""
        held: dict = {}
        chunks: list[bytes] = []

        def hold(status, headers, exc_info=None):  # noqa: ARG001 - WSGI signature
            held["status"], held["headers"] = status, headers
            return chunks.append

        result = moto_app(environ, hold)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers, body = held["status"], held["headers"], b"".join(chunks)
        error = xml_error(body) if int(status.split()[0]) >= 400 else None
        if error is not None:
            code, message = error
            code = ECR_ERROR_CODES.get(code, code)
            if code == "AccessDeniedException" and " on resource: " not in message:
                message += " on resource: *"
            body = json.dumps({"__type": code, "message": message}).encode()
            drop = {"content-type", "content-length", "x-amzn-errortype"}
            headers = [(k, v) for k, v in headers if k.lower() not in drop] + [
                ("Content-Type", ECR_JSON),
                ("x-amzn-ErrorType", code),
                ("Content-Length", str(len(body))),
            ]
        start_response(status, headers)
        return [body]

    def reply(start_response, status: str, body: str, ctype: str = "application/json"):
        raw = body.encode()
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(raw)))])
        return [raw]

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/testbed/"):
            if environ.get("HTTP_X_AMZ_TARGET", "").startswith(ECR_TARGET_PREFIX):
                return ecr_app(environ, start_response)
            return moto_app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/testbed/health":
            return reply(start_response, "200 OK", "ok", "text/plain")
        if path == "/testbed/iam-user":
            if method != "POST":
                return reply(start_response, "405 Method Not Allowed", json.dumps({"error": method}))
            return create_iam_user(environ, start_response)
        if path != "/testbed/token-ttl":
            return reply(start_response, "404 Not Found", json.dumps({"error": "not found"}))
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                text = environ["wsgi.input"].read(length).decode().strip()
                value = json.loads(text)
                seconds = value["seconds"] if isinstance(value, dict) else value
                key = value.get("accessKeyId") if isinstance(value, dict) else None
                if not isinstance(seconds, int) or isinstance(seconds, bool):
                    raise ValueError("seconds must be an integer")
                if key is not None and (not isinstance(key, str) or not key):
                    raise ValueError("accessKeyId must be a non-empty string")
            except Exception as err:  # noqa: BLE001 - any bad body is a 400
                msg = f'expected {{"seconds": <integer>, "accessKeyId"?: <string>}} or an integer: {err}'
                return reply(start_response, "400 Bad Request", json.dumps({"error": msg}))
            with lock:
                if key is None:
                    state["ttl"] = seconds
                else:
                    state["by_key"][key] = seconds
        elif method == "DELETE":
            with lock:
                state["ttl"] = start_ttl
                state["by_key"] = {}
        elif method != "GET":
            return reply(start_response, "405 Method Not Allowed", json.dumps({"error": method}))
        with lock:
            body = {"seconds": state["ttl"], "byAccessKeyId": dict(state["by_key"])}
        return reply(start_response, "200 OK", json.dumps(body))

    def create_iam_user(environ, start_response):
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.iam.models import iam_backends
        from moto.utilities.utils import get_partition

        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            value = json.loads(environ["wsgi.input"].read(length).decode() or "null")
            if not isinstance(value, dict):
                raise ValueError("the body must be a JSON object")
            name = value.get("userName")
            policy = value.get("policy")
            region = value.get("region", "us-east-1")
            if not isinstance(name, str) or not name:
                raise ValueError("userName must be a non-empty string")
            if policy is not None and not isinstance(policy, (str, dict)):
                raise ValueError("policy must be a policy document (object or JSON string)")
            if not isinstance(region, str) or not region:
                raise ValueError("region must be a non-empty string")
        except Exception as err:  # noqa: BLE001 - any bad body is a 400
            msg = f'expected {{"userName": <string>, "policy"?: <object|string>, "region"?: <string>}}: {err}'
            return reply(start_response, "400 Bad Request", json.dumps({"error": msg}))
        account = os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
        backend = iam_backends[account][get_partition(region)]
        with lock:
            if name in backend.users:
                return reply(start_response, "409 Conflict", json.dumps({"error": f"user {name} exists"}))
            try:
                user = backend.create_user(region_name=region, user_name=name)
                if policy is not None:
                    doc = policy if isinstance(policy, str) else json.dumps(policy)
                    backend.put_user_policy(name, "testbed", doc)
                key = backend.create_access_key(name)
                checked_keys.add(key.access_key_id)
            except Exception as err:  # noqa: BLE001 - moto's validation errors (a bad policy document)
                backend.users.pop(name, None)
                msg = getattr(err, "message", None) or str(err)
                return reply(start_response, "400 Bad Request", json.dumps({"error": msg}))
        body = {
            "userName": name,
            "arn": user.arn,
            "accessKeyId": key.access_key_id,
            "secretAccessKey": key.secret_access_key,
        }
        return reply(start_response, "200 OK", json.dumps(body))

    server = make_server(HOST, port, app, threaded=True, request_handler=MotoRequestHandler)
    actual = server.server_address[1]
    os.environ["MOTO_PORT"] = str(actual)

    def stop(signum, frame):  # noqa: ARG001
        # shutdown() waits for serve_forever to return, so it must run off the main thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"moto listening on http://{HOST}:{actual}", flush=True)
    try:
        server.serve_forever(poll_interval=0.05)  # shutdown() is seen within one poll
    finally:
        server.server_close()


def xml_error(body: bytes) -> tuple[str, str] | None:
    """(Code, Message) of moto's <ErrorResponse><Errors><Error>...</Error></Errors></ErrorResponse>."""
    if b"<ErrorResponse" not in body[:512]:
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    local = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
    if not local.get("Code"):
        return None
    return local["Code"], local.get("Message", "")


if __name__ == "__main__":
    main()
