"""Schemathesis hooks of the admin API contract test (tests/tests/api_contract.rs).

A valid `POST /api/v1/sessions` may ask for an 8192x8192 synthetic desktop
captured every 5 ms; a few dozen of those left running would starve a small
machine for the rest of the run. So only the two newest sessions schemathesis
opened stay open: older ones are closed (through the API under test) when a
new one is created. The newest stay, so the stateful phase can still use the
session it just created.
"""

import os

import requests
import schemathesis

KEEP = 2
_opened = []


@schemathesis.hook
def after_call(context, case, response):
    if case.method.upper() != "POST" or case.path != "/api/v1/sessions":
        return
    if response.status_code != 201:
        return
    _opened.append(response.json()["id"])
    while len(_opened) > KEEP:
        session = _opened.pop(0)
        closed = requests.delete(
            f"{os.environ['TANDEM_ADMIN_URL']}/api/v1/sessions/{session}",
            headers={"Authorization": f"Bearer {os.environ['TANDEM_ADMIN_TOKEN']}"},
            timeout=10,
        )
        # 404: schemathesis closed it itself.
        assert closed.status_code in (204, 404), f"closing {session}: {closed.status_code} {closed.text}"
