"""Signs schemathesis' requests the way the providers do, so fuzzed webhook bodies reach the
gateway's parsing and inbox instead of stopping at signature checks.

Loaded through SCHEMATHESIS_HOOKS by cli/tests/openapi.rs, which passes the secrets in the
environment. Requests are signed as sent (final URL and body bytes), by wrapping the HTTP
adapter every requests session uses.
"""

import base64
import hashlib
import hmac
import os
import time
from urllib.parse import parse_qsl, urlsplit

import requests.adapters

ELEVENLABS_SECRET = os.environ["CALLMESH_TEST_WEBHOOK_SECRET"]
INITIATION_HEADER = os.environ.get("CALLMESH_TEST_INITIATION_HEADER", "X-Webhook-Secret")
INITIATION_SECRET = os.environ["CALLMESH_TEST_INITIATION_SECRET"]
TWILIO_TOKEN = os.environ["CALLMESH_TEST_TWILIO_TOKEN"]

ELEVENLABS_PATHS = (
    "/api/webhooks/elevenlabs/",
    "/api/convai-webhook",
    "/webhooks/elevenlabs",
)
TWILIO_PATHS = ("/api/webhooks/twilio/",)


def _body_bytes(body):
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def sign(request):
    if request.method != "POST":
        return
    path = urlsplit(request.url).path
    body = _body_bytes(request.body)
    if path.startswith(ELEVENLABS_PATHS):
        t = str(int(time.time()))
        mac = hmac.new(ELEVENLABS_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256)
        request.headers["ElevenLabs-Signature"] = f"t={t},v0={mac.hexdigest()}"
        if path.endswith("/conversation-initiation"):
            request.headers[INITIATION_HEADER] = INITIATION_SECRET
    elif path.startswith(TWILIO_PATHS):
        params = {}
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return
        for name, value in pairs:
            params.setdefault(name, []).append(value)
        # Twilio's algorithm: the URL, then each field name with each of its values, by name.
        text = request.url + "".join(
            name + value for name in sorted(params) for value in sorted(set(params[name]))
        )
        mac = hmac.new(TWILIO_TOKEN.encode(), text.encode("utf-8"), hashlib.sha1)
        request.headers["X-Twilio-Signature"] = base64.b64encode(mac.digest()).decode()


_send = requests.adapters.HTTPAdapter.send


def _signed_send(self, request, *args, **kwargs):
    sign(request)
    return _send(self, request, *args, **kwargs)


requests.adapters.HTTPAdapter.send = _signed_send
