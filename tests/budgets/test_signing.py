"""Our Standard Webhooks signatures verify with the `standardwebhooks` package."""

from __future__ import annotations

import base64
import time

import pytest
import standardwebhooks

from service.webhooks import signing


def test_signature_verifies_with_standardwebhooks() -> None:
    secret = signing.new_secret()
    body = b'{"type":"budget.threshold_crossed","data":{"used":"0.3"}}'
    now = int(time.time())
    headers = signing.headers(secret, "msg_2Kx", now, body)
    verified = standardwebhooks.Webhook(secret).verify(body, headers)
    assert verified["data"]["used"] == "0.3"
    # the key is the decoded secret, not its text: signing with the text fails
    tampered = dict(headers)
    tampered["webhook-signature"] = signing.signature(
        "whsec_" + base64.b64encode(secret.encode()).decode(), "msg_2Kx", now, body
    )
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body, tampered)
