"""The auth service's Prometheus metrics beyond the per-RPC ones every service has."""

from prometheus_client import Counter

LOGINS = Counter(
    "podium_auth_logins",
    "Login attempts: succeeded, refused (no such name, or a wrong password), throttled (too "
    "many failures) or banned.",
    ["outcome"],
)
LOGINS_SUCCEEDED = LOGINS.labels("succeeded")
LOGINS_REFUSED = LOGINS.labels("refused")
LOGINS_THROTTLED = LOGINS.labels("throttled")
LOGINS_BANNED = LOGINS.labels("banned")
