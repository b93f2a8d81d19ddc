"""Sessions through the gateway: list, sign out everywhere, password change, throttling."""

from __future__ import annotations

import pytest

from tests.support.api import PASSWORD, Api, sign_up_and_log_in

SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Safari/605.1.15")


def log_in(api: Api, login: str, password: str = PASSWORD, agent: str = "curl/8") -> Api:
    response = api.call("POST", "/api/v1/sessions", json={"login": login, "password": password},
                        headers={"User-Agent": agent})
    assert response.status_code == 200, response.text
    return api.as_user(response.json()["token"])


@pytest.mark.notice("3.2.3")
def test_sessions_are_listed_with_device_and_the_current_one_marked(api: Api) -> None:
    first, _, body = sign_up_and_log_in(api)
    second = log_in(api, body["username"], agent=SAFARI)
    listed = second.call("GET", "/api/v1/me/sessions")
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 2
    current = [s for s in items if s["current"]]
    assert len(current) == 1 and current[0]["browser"] == "Safari" and current[0]["os"] == "Mac OS X"
    assert set(items[0]) == {"id", "created_at", "last_seen_at", "browser", "os", "current"}
    assert first.call("GET", "/api/v1/me").status_code == 200


@pytest.mark.rule("R-SEC-2")
def test_sign_out_everywhere_revokes_every_session_at_once(api: Api) -> None:
    first, _, body = sign_up_and_log_in(api)
    second = log_in(api, body["username"])
    assert second.call("DELETE", "/api/v1/me/sessions").status_code == 204
    for user in (first, second):
        assert user.call("GET", "/api/v1/me").status_code == 401


@pytest.mark.rule("R-SEC-2")
def test_password_change_needs_the_old_one_and_revokes_the_others(api: Api) -> None:
    other, _, body = sign_up_and_log_in(api)
    current = log_in(api, body["username"])
    wrong = current.call("POST", "/api/v1/me/password",
                         json={"current_password": "not it at all", "new_password": "a fresh passphrase here"})
    assert wrong.status_code == 403
    weak = current.call("POST", "/api/v1/me/password",
                        json={"current_password": PASSWORD, "new_password": "password1234"})
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "weak_password"
    done = current.call("POST", "/api/v1/me/password",
                        json={"current_password": PASSWORD, "new_password": "a fresh passphrase here"})
    assert done.status_code == 204
    assert current.call("GET", "/api/v1/me").status_code == 200
    assert other.call("GET", "/api/v1/me").status_code == 401
    assert log_in(api, body["username"], "a fresh passphrase here")


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-2")
def test_repeated_failed_logins_get_429_with_retry_after(api: Api) -> None:
    _, _, body = sign_up_and_log_in(api)
    statuses = [api.call("POST", "/api/v1/sessions", json={"login": body["username"], "password": "wrong one!"})
                .status_code for _ in range(5)]
    assert statuses == [401] * 5
    throttled = api.call("POST", "/api/v1/sessions", json={"login": body["username"], "password": PASSWORD})
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["error"]["code"] == "throttled"
