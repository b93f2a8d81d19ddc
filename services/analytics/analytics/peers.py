"""The other regions' analytics services, over gRPC: the `Peers` port of regions.py.

Regions do not share KASEUM_SERVICE_SECRET (one region's secret must not open another region's
identity or tickets), so peers prove themselves with a token signed by a secret of their own,
ANALYTICS_PEER_SECRET, which opens one method only: RegionUsage, released aggregates. Its token
travels in its own header, so a deployment's service interceptor never mistakes it for one of its
service tokens (and never accepts a service token for it).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from datetime import date

import grpc
import jwt
from kaseum.analytics.v1 import analytics_pb2 as pb
from kaseum.analytics.v1 import analytics_pb2_grpc
from servicekit import clients
from servicekit.errors import Unauthenticated
from servicekit.grpc_server import ERROR_CODE_KEY

from .regions import RegionAnswer

PEER_HEADER = "x-kaseum-analytics-peer"
PEER_AUDIENCE = "kaseum-analytics-peer"
SERVICE = "kaseum.analytics.v1.Analytics"
TOKEN_TTL = 120
_CODE = re.compile(r"^[a-z]{2,8}$")


def parse_peers(text: str) -> dict[str, str]:
    """ANALYTICS_PEERS: "eu=analytics.eu.internal:50055,us=…" → {region: address}."""
    peers: dict[str, str] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        region, sep, addr = item.partition("=")
        region, addr = region.strip(), addr.strip()
        if not sep or not _CODE.match(region) or not re.match(r"^[^\s:]+:\d{1,5}$", addr):
            raise ValueError(f"ANALYTICS_PEERS entry {item!r} is not region=host:port")
        if region in peers:
            raise ValueError(f"ANALYTICS_PEERS names {region} twice")
        peers[region] = addr
    return peers


def mint_peer_token(secret: bytes, region: str, ttl: int = TOKEN_TTL) -> str:
    now = int(time.time())
    return jwt.encode({"sub": region, "aud": PEER_AUDIENCE, "iat": now, "exp": now + ttl}, secret,
                      algorithm="HS256")


def verify_peer_token(secret: bytes, token: str, own_region: str) -> str:
    """The calling region, or Unauthenticated."""
    if len(secret) < 32:
        raise Unauthenticated("this region does not answer peers (no ANALYTICS_PEER_SECRET)")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience=PEER_AUDIENCE,
                            options={"require": ["exp", "sub"]})
    except jwt.PyJWTError as exc:
        raise Unauthenticated("invalid peer credentials") from exc
    region = str(claims["sub"])
    if not _CODE.match(region) or region == own_region:
        raise Unauthenticated("invalid peer credentials")
    return region


class GrpcPeers:
    """Asks each configured peer region's analytics service for its released cells."""

    def __init__(self, peers: Mapping[str, str], secret: bytes, region: str, deadline: float = 5.0) -> None:
        self._stubs = {code: analytics_pb2_grpc.AnalyticsStub(clients.channel(addr, SERVICE, ["RegionUsage"],
                                                                              deadline=deadline))
                       for code, addr in peers.items() if code != region}
        self._secret = secret
        self._region = region
        self._token = ""
        self._expires = 0.0
        self._lock = threading.Lock()

    def regions(self) -> list[str]:
        return sorted(self._stubs)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        with self._lock:
            if time.time() > self._expires - 30:
                self._token = mint_peer_token(self._secret, self._region)
                self._expires = time.time() + TOKEN_TTL
            return ((PEER_HEADER, self._token),)

    def ask(self, region: str, feature: str, from_date: str, to_date: str, granularity: str,
            dimension: str) -> RegionAnswer:
        try:
            response = self._stubs[region].RegionUsage(pb.RegionUsageRequest(
                feature=feature, from_date=from_date, to_date=to_date, granularity=granularity,
                dimension=dimension), metadata=self._metadata())
        except grpc.RpcError as exc:
            raise PeerFailed(_describe(exc)) from exc
        if response.region != region:
            raise PeerFailed(f"the address configured for {region} answered as {response.region or 'nobody'}")
        return RegionAnswer(response.region, int(response.min_group_size), response.measure,
                            [(date.fromisoformat(c.period), c.value, int(c.users), int(c.active_users),
                              bool(c.suppressed)) for c in response.cells])


class PeerFailed(Exception):
    """A peer region did not answer; the message says why (it goes into `not_reporting`)."""


def _describe(error: grpc.RpcError) -> str:
    if not isinstance(error, grpc.Call):
        return "the call failed"
    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return "unreachable"
    code = next((v for k, v in error.trailing_metadata() or () if k == ERROR_CODE_KEY), "")
    return f"{error.details()} ({code or error.code().name.lower()})"
