"""Typed settings read once from the environment and passed into bootstrap()."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .dimensions import DEFAULT_PRODUCTS, parse_products

SERVICES = ("identity", "tickets", "consent", "rights", "analytics")
DEFAULT_PORTS = {name: 50051 + i for i, name in enumerate(SERVICES)}


class CommonSettings(BaseSettings):
    """What every process needs. Service-specific settings subclass this."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    region: str = Field(default="uk", pattern=r"^[a-z]{2,8}$")
    nats_url: str = "nats://127.0.0.1:4222"
    # Signs short-lived service-to-service tokens (HS256). From the environment only.
    kaseum_service_secret: SecretStr = SecretStr("")
    identity_addr: str = f"127.0.0.1:{DEFAULT_PORTS['identity']}"
    tickets_addr: str = f"127.0.0.1:{DEFAULT_PORTS['tickets']}"
    consent_addr: str = f"127.0.0.1:{DEFAULT_PORTS['consent']}"
    rights_addr: str = f"127.0.0.1:{DEFAULT_PORTS['rights']}"
    analytics_addr: str = f"127.0.0.1:{DEFAULT_PORTS['analytics']}"
    otel_exporter_otlp_endpoint: str = ""
    log_level: str = "INFO"
    # The products usage statistics may name (comma-separated slugs); any other product a customer
    # types is counted as "other" (servicekit/dimensions.py). The gateway and analytics both apply it.
    analytics_products: str = ",".join(DEFAULT_PRODUCTS)

    @field_validator("analytics_products")
    @classmethod
    def _product_slugs(cls, value: str) -> str:
        parse_products(value)
        return value

    def products(self) -> tuple[str, ...]:
        return parse_products(self.analytics_products)

    def addr_of(self, service: str) -> str:
        return str(getattr(self, f"{service}_addr"))

    def service_secret(self) -> bytes:
        secret = self.kaseum_service_secret.get_secret_value()
        if len(secret) < 32:
            raise RuntimeError(
                "KASEUM_SERVICE_SECRET must be set to at least 32 characters "
                "(`make run` generates one into var/kaseum.env)"
            )
        return secret.encode()


class ServiceSettings(CommonSettings):
    """Settings of one gRPC service; `database_url` comes from DATABASE_URL_<SERVICE>."""

    service_name: str = ""
    database_url: str = ""
    grpc_bind: str = ""
    # Threads serving gRPC calls; more only queue behind the GIL and the database's write lock.
    grpc_workers: int = 8
    # Bounded redelivery before a message goes to the dead-letter stream.
    max_deliver: int = 5
    # Governance (servicekit/governance.py): the transfer policy's data and the purge job.
    # A JSON file of IDTA/Addendum safeguards (Helm: a ConfigMap); empty means none recorded.
    transfer_safeguards_file: str = ""
    # The adequacy list; empty means the packaged UK list (servicekit/data/uk-adequacy.json).
    adequacy_file: str = ""
    # Hosting providers (section 5.1.2) as JSON: [{"name", "country", "categories"}], checked at start.
    hosting_providers: str = "[]"
    # ... and re-checked while running at least this often (and just after each UTC midnight).
    hosting_recheck_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)
    retention_purge_interval_seconds: float = Field(default=3600.0, gt=0)
    # After an Erase, the database files are scrubbed (WAL checkpoint / VACUUM) within this.
    scrub_interval_seconds: float = Field(default=2.0, gt=0)
    retention_batch_size: int = Field(default=1000, ge=1, le=100_000)
    # Seconds between purge batches: request transactions get the write lock in between.
    retention_batch_pause_seconds: float = Field(default=0.01, ge=0)
    # A purge batch that takes longer than this shrinks (short transactions, short lock waits).
    retention_max_batch_seconds: float = Field(default=0.010, gt=0)
    # After each batch the purge pauses this many times the batch's duration (background work yields).
    retention_yield_factor: float = Field(default=3.0, ge=0)

    @classmethod
    def for_service(cls, name: str, **overrides: object) -> ServiceSettings:
        import os

        url = os.environ.get(f"DATABASE_URL_{name.upper()}", f"sqlite:///var/{name}.db")
        values: dict[str, object] = {"service_name": name, "database_url": url}
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        if not settings.grpc_bind:
            port = settings.addr_of(name).rsplit(":", 1)[1]
            settings.grpc_bind = f"127.0.0.1:{port}" if "127.0.0.1" in settings.addr_of(name) else f"0.0.0.0:{port}"
        return settings
