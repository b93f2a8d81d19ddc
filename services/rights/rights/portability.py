"""Portability to another controller (notice 13.1.6; Art. 20(2); R-PORT-1): the portable ZIP, POSTed
to the HTTPS endpoint the subject named, only where the transfer policy allows the destination.

The decision is the servicekit TransferGate's (logged, allowed or refused, on the transfer log the DPO
reads). A refusal is final for the request: the step is done with the reason and the subject still
downloads the data; a failure to deliver is retried by the orchestrator like any other step. The ZIP
is streamed to the connection in chunks (HTTP chunked encoding), never held whole.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from urllib.parse import urlsplit

from servicekit.db import UnitOfWorkFactory, as_utc
from servicekit.errors import NotFound
from servicekit.transfers import TransferGate

from . import export_zip
from .models import Repository
from .orchestration import StepCall, StepFailed, StepResult

# What a portable export carries (the subject's identity, contact, profile and marketing data and
# their own ticket text): the categories a transfer decision is asked for.
PORTABLE_CATEGORIES = ("3.2.1", "3.2.2", "3.2.4", "3.2.6", "ticket_content")
TIMEOUT_SECONDS = 60.0


class Pusher:
    def __init__(self, uow: UnitOfWorkFactory[Repository], transfers: TransferGate | None,
                 loader: Callable[[str], AbstractContextManager[Callable[[str, int], export_zip.Part]]],
                 ca_file: str = "") -> None:
        self.uow = uow
        # A request's stored pieces, by service and seq (RightsService.export_loader).
        self.loader = loader
        self.transfers = transfers
        # A private CA bundle may be named for controllers on one; otherwise the system's trust store.
        self.tls = ssl.create_default_context(cafile=ca_file or None)

    def run(self, call: StepCall) -> StepResult:
        with self.uow() as uow:
            request = uow.repo.request(call.request_id)
            if request is None:
                raise StepFailed("NOT_FOUND")
            pieces = uow.repo.export_pieces(request.id)
            fields = export_zip.request_fields(request.id, request.kind, as_utc(request.received_at), None)
            url, country = request.destination_url, request.destination_country
        host = urlsplit(url).hostname or ""
        if self.transfers is None:
            raise StepFailed("NO_TRANSFER_POLICY")
        decision = self.transfers.check("portability", country, host, PORTABLE_CATEGORIES, call.subject_id)
        if not decision.allowed:
            return StepResult(f"not sent to {host}: transfer refused", [f"transfer to {country}: {decision.reason}"])
        try:
            with self.loader(call.request_id) as load:
                sent = self._post(url, export_zip.build(fields, pieces, load, portable_only=True))
        except NotFound as gone:
            raise StepFailed("EXPORT_GONE") from gone
        return StepResult(f"sent {sent} bytes to {host} ({decision.basis})")

    def _post(self, url: str, body: Iterator[bytes]) -> int:
        parts = urlsplit(url)
        counted = _Counted(body)
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port or 443, timeout=TIMEOUT_SECONDS,
                                                 context=self.tls)
        try:
            path = parts.path or "/"
            connection.request("POST", path + (f"?{parts.query}" if parts.query else ""), body=counted,
                               headers={"Content-Type": "application/zip"}, encode_chunked=True)
            status = connection.getresponse().status
        except ssl.SSLError as exc:
            raise StepFailed("TLS_FAILED") from exc
        except OSError as exc:
            raise StepFailed("UNREACHABLE") from exc
        finally:
            connection.close()
        if not 200 <= status < 300:
            raise StepFailed(f"HTTP_{status}")
        return counted.sent


class _Counted:
    """The ZIP's chunks as they go out, counted."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if chunk:
                self.sent += len(chunk)
                yield chunk
