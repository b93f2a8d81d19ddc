"""A dependency down mid-request gets a defined answer, never a traceback."""

from __future__ import annotations

from servicekit.testing import eventually

from tests.support.api import Api, sign_up_and_log_in
from tools.stack import Stack


def test_a_service_down_is_503_with_retry_after_and_ready_says_so(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    stack.start()
    api = Api(stack.gateway_url)
    user, _, _ = sign_up_and_log_in(api)
    stack.stop_process("tickets")
    response = user.call("GET", "/api/v1/tickets")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert "Traceback" not in response.text
    ready = api.call("GET", "/readyz")
    assert ready.status_code == 503 and ready.json()["services"]["tickets"] == "UNREACHABLE"
    stack.start_service("tickets")
    eventually(lambda: user.call("GET", "/api/v1/tickets").status_code == 200, what="tickets back")


def test_identity_down_stops_sign_in_but_not_signed_in_work(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    stack.start()
    api = Api(stack.gateway_url)
    user, _, body = sign_up_and_log_in(api)
    stack.stop_process("identity")
    # Tokens are checked with cached public keys and the revoked-session bucket: no identity call.
    assert user.call("GET", "/api/v1/tickets").status_code == 200
    login = api.call("POST", "/api/v1/sessions", json={"login": body["username"], "password": body["password"]})
    assert login.status_code == 503 and login.json()["error"]["code"] == "service_unavailable"


def test_a_service_started_while_identity_is_down_is_not_ready_and_answers_503_until_it_returns(
        make_stack) -> None:  # type: ignore[no-untyped-def]
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stack: Stack = make_stack()
    stack.start()
    api = Api(stack.gateway_url)
    user, _, _ = sign_up_and_log_in(api)
    stack.stop_process("identity")
    stack.stop_process("tickets")
    stack.start_service("tickets")  # it cannot fetch identity's public keys

    def health(service: str) -> int:
        try:
            with grpc.insecure_channel(stack.grpc_addr("tickets")) as channel:
                return int(health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=2).status)
        except grpc.RpcError:
            return -1  # not listening yet

    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    eventually(lambda: health("kaseum.dependency.identity_keys") == not_serving, what="tickets to report no keys")
    assert health("") == not_serving  # not ready: it could check no person's token
    # Asked all the same (a client that ignores readiness): try again later, never "signed out".
    response = user.call("GET", "/api/v1/tickets")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1", response.text
    assert response.json()["error"]["code"] == "service_unavailable"
    stack.start_service("identity")
    eventually(lambda: health("") == health_pb2.HealthCheckResponse.SERVING, timeout=60, what="tickets ready")
    assert user.call("GET", "/api/v1/tickets").status_code == 200


def test_with_nats_down_the_gateway_asks_identity_and_logout_waits(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    stack.start()
    api = Api(stack.gateway_url)
    user, _, _ = sign_up_and_log_in(api)
    stack.stop_nats()
    assert user.call("GET", "/api/v1/me").status_code == 200  # identity answers for the bucket
    # The revocation cannot reach the gateways: the logout is refused, not half done.
    refused = user.call("DELETE", "/api/v1/sessions/current")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert user.call("GET", "/api/v1/me").status_code == 200
    stack.start_nats()
    eventually(lambda: user.call("DELETE", "/api/v1/sessions/current").status_code == 204, timeout=60,
               what="logout once NATS is back")
    assert user.call("GET", "/api/v1/me").status_code == 401


def test_nats_down_requests_still_work_and_health_names_the_dependency(make_stack) -> None:  # type: ignore[no-untyped-def]
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stack: Stack = make_stack()
    stack.start()
    api = Api(stack.gateway_url)
    stack.stop_nats()

    def nats_reported_down() -> bool:
        with grpc.insecure_channel(stack.grpc_addr("tickets")) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="kaseum.dependency.nats"), timeout=2)
            return answer.status == health_pb2.HealthCheckResponse.NOT_SERVING

    eventually(nats_reported_down, what="the NATS dependency to be reported down")
    # The outbox keeps events, so the system still serves: ready, and writes succeed.
    assert api.call("GET", "/readyz").status_code == 200
    user, _, _ = sign_up_and_log_in(api)
    assert user.call("POST", "/api/v1/tickets", json={"subject": "s", "body": "b"}).status_code == 201
