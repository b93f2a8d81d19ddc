"""The Flask app factory: `gunicorn 'gateway.app:create_app()'`."""

from __future__ import annotations

import json

from flask import Flask, Response, request
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from servicekit import telemetry
from servicekit.bus import Bus
from servicekit.logs import setup_logging
from servicekit.revocations import RevocationList
from werkzeug.middleware.proxy_fix import ProxyFix

from . import errors, openapi, usage
from .api import (
    accounts,
    admin,
    analytics,
    analytics_page,
    campaigns,
    dpo,
    dpo_page,
    me,
    organisations,
    rights,
    tickets,
    unsubscribe,
)
from .backends import Backends, connect, jwks_verifier
from .config import GatewaySettings
from .errors import error_response
from .health import bp as health_bp

WRITE_METHODS = {"POST", "PUT", "PATCH"}
# Paths that take a form body too: RFC 8058's one-click POST is `List-Unsubscribe=One-Click`.
FORM_PATHS = {unsubscribe.PATH}


def create_app(settings: GatewaySettings | None = None, backends: Backends | None = None) -> Flask:
    settings = settings or GatewaySettings()
    setup_logging("gateway", settings.log_level)
    telemetry.setup_tracing("gateway", settings.otel_exporter_otlp_endpoint)
    app = Flask(__name__)
    if telemetry.enabled():
        # First, so its request hooks wrap ours (a span exists even for early error answers). Only when spans
        # go somewhere: with the no-op tracer it still read every request's URL and headers (~0.15 ms).
        FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz")  # type: ignore[no-untyped-call]
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    app.extensions["kaseum_backends"] = backends or connect(settings)
    app.extensions["kaseum_verifier"] = jwks_verifier(app.extensions["kaseum_backends"])
    app.extensions["kaseum_verifier"].warm_up()
    # Each worker process keeps one NATS connection for the revoked-session lookups.
    bus = Bus(settings.nats_url, settings.region, "gateway")
    bus.start()
    app.extensions["kaseum_revocations"] = RevocationList(bus, settings.region)
    # The same connection publishes usage events, fire-and-forget (usage.py).
    usage.register(app, bus, settings.region, settings.products())
    app.extensions["kaseum_settings"] = settings
    errors.register(app)

    @app.before_request
    def _require_json_object() -> Response | None:
        """Malformed JSON is 400 (API.md); a valid body of the wrong shape is left to the models (422)."""
        if request.method not in WRITE_METHODS or not request.path.startswith("/api/") or (
                request.path in FORM_PATHS and request.mimetype != "application/json"):
            return None
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            return error_response(413, "too_large", f"request body exceeds {settings.max_body_bytes} bytes")
        raw = request.get_data(cache=True)
        if not raw:
            if openapi.takes_json(app.view_functions.get(request.endpoint or "")):
                return error_response(400, "malformed", "a JSON body is required")
            return None
        if request.mimetype != "application/json":
            return error_response(400, "malformed", "send the body as application/json")
        try:
            json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return error_response(400, "malformed", "the body is not valid JSON")
        return None

    for blueprint in (health_bp, accounts.bp, me.bp, tickets.bp, rights.bp, admin.bp, organisations.bp,
                      analytics.bp, analytics_page.bp, unsubscribe.bp, campaigns.bp, dpo.bp, dpo_page.bp):
        app.register_blueprint(blueprint)
    openapi.register(app)
    return app
