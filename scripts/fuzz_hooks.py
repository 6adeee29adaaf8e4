"""Schemathesis hooks for scripts/fuzz_api.py: who the fuzzer is and which ids it tries.

Loaded by ``schemathesis run`` through ``SCHEMATHESIS_HOOKS=scripts.fuzz_hooks``; reads
the seeded state (``FUZZ_STATE``: ids, tokens) written by ``seed_fuzz_dataset``.

* **Authentication**: every request carries the fuzz person's bearer token, set by an
  auth provider, so Schemathesis knows it is the real credential (``ignored_auth``
  then repeats a successful request without it and with a wrong one, expecting 401).
  A request that could end the session it runs in (sign-out, password change, account
  deletion) is sent in a throwaway session instead (``before_call``, on the request as
  it will be sent), so none can sign the fuzz person out for the rest of the run.
* **Ids**: a random integer almost never names a row, so only the 404 branch of a
  ``/{id}`` route would be fuzzed. Path ids are drawn half the time from the seeded
  rows: the fuzz person's own (200, and the 4xx of the body checks) and the other
  person's (404). DELETE draws from rows set aside for it, so reads keep finding rows.
* **Secrets in bodies**: sign-in, refresh, sign-out and password change are given a
  real credential some of the time (the placeholders below, swapped for a throwaway
  account's values), so their success paths are checked too.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

STATE_PATH = Path(os.environ["FUZZ_STATE"])
STATE = json.loads(STATE_PATH.read_text())
SELF = STATE["users"]["self"]
OTHER = STATE["users"]["other"]

# Placeholders a generated body or path may carry; replaced with a throwaway session's
# real values just before the request is sent (before_call).
USERNAME = "__fuzz_username__"
PASSWORD = "__fuzz_password__"  # noqa: S105 - a placeholder, not a secret
REFRESH = "__fuzz_refresh__"
THROWAWAY_ID = -424242  # a user id placeholder: the throwaway account's own id

# Operations that may end the session they are called in, or use a throwaway account's
# credentials from their body (see _needs_throwaway).
SESSION_OPERATIONS = {
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/password"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/token/refresh"),
    ("DELETE", "/api/v1/users/me"),
    ("DELETE", "/api/v1/users/{user_id}"),
}
# Operations only a clinician can use: called with the token of a clinician on both
# seeded people's care teams.
CLINICIAN_OPERATIONS = {
    ("POST", "/api/v1/health-insights"),
    ("GET", "/api/v1/users/me/patients"),
}
# Operations whose bodies may carry a throwaway account's credentials.
CREDENTIAL_BODIES = {
    ("POST", "/api/v1/auth/token"): {"username": USERNAME, "password": PASSWORD},
    ("POST", "/api/v1/auth/token/refresh"): {"refresh": REFRESH},
    ("POST", "/api/v1/auth/logout"): {"refresh": REFRESH},
    ("POST", "/api/v1/auth/password"): {"old_password": PASSWORD, "new_password": "fuzz-New-Password-42!"},
}

# Path parameter -> seeded ids, by whose they are.
_ids = STATE["ids"]
READ_IDS = {
    "metric_id": _ids["self"]["metric"][:-10] + _ids["other"]["metric"][:5],
    "log_id": _ids["self"]["nutrition_log"][:-10] + _ids["other"]["nutrition_log"][:5],
    "goal_id": _ids["self"]["goal"][:-4] + _ids["other"]["goal"][:2],
    "insight_id": _ids["self"]["insight"] + _ids["other"]["insight"],
    "membership_id": _ids["other"]["membership"],
    "user_id": [SELF["id"], OTHER["id"], *(c["id"] for c in STATE["users"]["clinicians"])],
    "username": [SELF["username"], OTHER["username"], STATE["users"]["clinicians"][0]["username"]],
}
DELETE_IDS = {
    "metric_id": _ids["self"]["metric"][-10:] + _ids["other"]["metric"][:2],
    "log_id": _ids["self"]["nutrition_log"][-10:] + _ids["other"]["nutrition_log"][:2],
    "goal_id": _ids["self"]["goal"][-4:] + _ids["other"]["goal"][:2],
    "membership_id": _ids["self"]["membership"] + _ids["other"]["membership"],
    # Deleting an account: the throwaway's own (204) or someone else's (404).
    "user_id": [THROWAWAY_ID, OTHER["id"]],
}


def _key(ctx) -> tuple[str, str]:
    return ctx.operation.method.upper(), ctx.operation.path


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    """Half the time, a seeded id instead of the generated one."""
    if not path_parameters:
        return st.just(path_parameters)
    pools = DELETE_IDS if ctx.operation.method.upper() == "DELETE" else READ_IDS
    choices = [st.just(path_parameters)]
    for name in path_parameters:
        if name in pools:
            choices.append(
                st.sampled_from(pools[name]).map(lambda value, n=name: {**path_parameters, n: value})
            )
    return st.one_of(*choices)


@schemathesis.hook
def flatmap_query(ctx, query):
    """The optional ``user_id`` query parameter: mostly left out (the caller) or a seeded
    person, sometimes the generated value."""
    if not isinstance(query, dict) or "user_id" not in query:
        return st.just(query)
    rest = {name: value for name, value in query.items() if name != "user_id"}
    return st.one_of(
        st.just(query),
        st.just(rest),
        st.sampled_from([SELF["id"], OTHER["id"]]).map(lambda value: {**rest, "user_id": value}),
    )


@schemathesis.hook
def flatmap_body(ctx, body):
    """Sometimes real credentials (placeholders) in the bodies of the auth operations,
    and a real patient in the body of a clinician's insight."""
    if not isinstance(body, dict):
        return st.just(body)
    template = CREDENTIAL_BODIES.get(_key(ctx))
    if template is not None:
        return st.one_of(st.just(body), st.just(dict(template)))
    if _key(ctx) == ("POST", "/api/v1/users/me/care-team"):
        # The seeded clinicians (granted: 200, not yet: 201) and a non-clinician (400).
        logins = [c["username"] for c in STATE["users"]["clinicians"]] + [OTHER["username"]]
        return st.one_of(st.just(body), st.sampled_from(logins).map(lambda login: {"clinician": login}))
    if _key(ctx) == ("POST", "/api/v1/users/register"):
        # A new, valid account now and then (random bodies rarely pass the password rules).
        return st.one_of(
            st.just(body),
            st.uuids().map(
                lambda uid: {
                    "username": f"fuzz-new-{uid.hex[:12]}",
                    "email": f"{uid.hex[:12]}@fuzz.example",
                    "password": "fuzz-Password-0123456789",
                }
            ),
        )
    if "user_id" in body and _key(ctx) == ("POST", "/api/v1/health-insights"):
        return st.one_of(
            st.just(body),
            st.sampled_from([SELF["id"], OTHER["id"]]).map(lambda value: {**body, "user_id": value}),
        )
    return st.just(body)


class _Throwaways:
    """The seeded throwaway sessions, each handed out once."""

    def __init__(self, sessions: list[dict]) -> None:
        self._sessions = sessions
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> dict:
        with self._lock:
            # Past the pool, the last one is reused: its requests answer 401 (documented),
            # which only narrows what is tested.
            session = self._sessions[min(self._next, len(self._sessions) - 1)]
            self._next += 1
            STATE_PATH.with_suffix(".used").write_text(str(min(self._next, len(self._sessions))))
            return session


THROWAWAYS = _Throwaways(STATE["disposable"])


def _replace(container, replacements: dict) -> None:
    if isinstance(container, dict):
        for name, value in list(container.items()):
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value) in replacements:
                container[name] = replacements[str(value)]


def _has_placeholder(case) -> bool:
    body = case.body if isinstance(case.body, dict) else {}
    return any(value in (USERNAME, PASSWORD, REFRESH) for value in body.values() if isinstance(value, str))


def _needs_throwaway(case) -> bool:
    """Could this request, as it will be sent, end the session it runs in?

    Deleting one's own account always does; deleting an account by id when the id is
    one's own (a seeded placeholder, or the fuzz person's id, which the stateful phase
    takes from earlier responses); signing out, refreshing and changing the password
    only with a valid refresh token or the current password, which only the
    placeholders provide.
    """
    key = (case.operation.method.upper(), case.operation.path)
    if key not in SESSION_OPERATIONS:
        return False
    if key == ("DELETE", "/api/v1/users/me"):
        return True
    if key == ("DELETE", "/api/v1/users/{user_id}"):
        user_id = str((case.path_parameters or {}).get("user_id"))
        return user_id in (str(THROWAWAY_ID), str(SELF["id"]))
    return _has_placeholder(case)


def _session_key(case, ctx):
    return "clinician" if _key(ctx) in CLINICIAN_OPERATIONS else "fuzz-person"


@schemathesis.auth(cache_by_key=_session_key)
class FuzzAuth:
    """The fuzz person's token (a clinician's for clinician-only operations)."""

    def get(self, case, ctx):
        if _key(ctx) in CLINICIAN_OPERATIONS:
            return STATE["clinician_token"]
        return STATE["token"]

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.hook
def before_call(ctx, case, kwargs):
    """Just before sending, with the final parameters (the stateful phase fills some from
    earlier responses after authentication): a request that could end the fuzz person's
    session is sent in a throwaway session instead, and placeholders get that session's
    values. Only requests carrying the fuzz person's token are switched, so the
    Schemathesis probes without a token or with a wrong one stay as they are."""
    key = (case.operation.method.upper(), case.operation.path)
    if key == ("POST", "/api/v1/auth/token"):
        session = STATE["login"]  # signing in ends nothing: one account serves every case
    elif _needs_throwaway(case):
        if (case.headers or {}).get("Authorization") != f"Bearer {STATE['token']}" and not _has_placeholder(
            case
        ):
            return
        session = THROWAWAYS.take()
        if (case.headers or {}).get("Authorization") == f"Bearer {STATE['token']}":
            case.headers["Authorization"] = f"Bearer {session['access']}"
    else:
        return
    replacements = {
        USERNAME: session["username"],
        PASSWORD: session["password"],
        REFRESH: session["refresh"],
        str(THROWAWAY_ID): session["id"],
    }
    _replace(case.body, replacements)
    _replace(case.path_parameters, replacements)


# --- What the run reached -----------------------------------------------------------

_statuses: dict[str, dict[str, int]] = {}
_statuses_lock = threading.Lock()
# Self-test of the runner (healthtrack/tests/test_fuzz_smoke.py): the responses of this
# operation ("GET /health") are turned into 500s, so the run must fail and say why.
INJECT_SERVER_ERROR = os.environ.get("FUZZ_SELFTEST_SERVER_ERROR", "")


@schemathesis.hook
def after_call(ctx, case, response):
    """Count the status codes per operation (written to ``<state>.statuses``): the
    runner reports operations whose success path the run never reached."""
    if case.method.upper() != case.operation.method.upper():
        return  # the coverage phase's probes with methods the route does not allow (405)
    label = f"{case.operation.method.upper()} {case.operation.path}"
    if label == INJECT_SERVER_ERROR:
        response.status_code = 500
    with _statuses_lock:
        counts = _statuses.setdefault(label, {})
        counts[str(response.status_code)] = counts.get(str(response.status_code), 0) + 1
        STATE_PATH.with_suffix(".statuses").write_text(json.dumps(_statuses))
