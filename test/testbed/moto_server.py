"""moto 5.2.5 server for the kubectl-ecr test bed, with a realistic ECR token expiry.

Usage:  <venv>/bin/python moto_server.py PORT
        Serves every AWS service moto implements on http://127.0.0.1:PORT (loopback only).
        PORT 0 picks a free port. Once listening, one line goes to stdout:
            moto listening on http://127.0.0.1:<port>

The one change to moto: ecr:GetAuthorizationToken answers expiresAt = now + TTL instead of moto's
fixed 2015-01-01. The TTL is 12 hours (43200 s, as real ECR gives) unless changed:
  - at start:   environment variable TESTBED_ECR_TOKEN_TTL_SECONDS (an integer, may be negative)
  - at run time, on this same server (looked up at every GetAuthorizationToken call):
      POST   /testbed/token-ttl   body {"seconds": N} or a bare integer N: the TTL for every caller,
                                  e.g. -60 for tokens that expired a minute ago
      POST   /testbed/token-ttl   body {"seconds": N, "accessKeyId": "K"}: the TTL for callers that sign
                                  with access key id K only (wins over the global one). Tests that run
                                  in parallel against one server each use their own AWS_ACCESS_KEY_ID
                                  (any value works while moto enforces no IAM policies) and don't
                                  disturb each other.
      DELETE /testbed/token-ttl   everything back to the start value
      GET    /testbed/token-ttl   the current settings
    each answers {"seconds": <global TTL>, "byAccessKeyId": {"K": N, ...}}
  - GET /testbed/health -> "ok" (readiness probe).
POST /moto-api/reset (moto's own) clears moto's state but not the TTL settings.

Everything else is moto as published: user "AWS", password "<registryId>-auth-token", proxyEndpoint
"https://<registryId>.dkr.ecr.<region>.amazonaws.com"; default account 123456789012
(MOTO_ACCOUNT_ID changes it).
"""

import json
import os
import re
import signal
import sys
import threading
from datetime import datetime, timedelta, timezone

HOST = "127.0.0.1"
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
DEFAULT_TTL = 12 * 60 * 60


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("usage: moto_server.py PORT", file=sys.stderr)
        sys.exit(2)
    port = int(sys.argv[1])

    start_ttl = int(os.environ.get("TESTBED_ECR_TOKEN_TTL_SECONDS", DEFAULT_TTL))
    state: dict = {"ttl": start_ttl, "by_key": {}}
    lock = threading.Lock()

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
        return result

    ECRResponse.get_authorization_token = get_authorization_token  # type: ignore[method-assign]

    moto_app = DomainDispatcherApplication(create_backend_app)

    def reply(start_response, status: str, body: str, ctype: str = "application/json"):
        raw = body.encode()
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(raw)))])
        return [raw]

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/testbed/"):
            return moto_app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/testbed/health":
            return reply(start_response, "200 OK", "ok", "text/plain")
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


if __name__ == "__main__":
    main()
