"""gRPC translation for identity: requests in, rules called, messages out."""

from __future__ import annotations

import json
from typing import Any

from kaseum.identity.v1 import identity_pb2 as pb
from kaseum.identity.v1 import identity_pb2_grpc
from servicekit import caller
from servicekit.errors import PermissionDenied
from servicekit.grpc_server import status_of
from servicekit.timestamps import to_timestamp

from .models import Account, Contact
from .service import IdentityService, NewStaff, SignUp, Tokens

SERVICE = "kaseum.identity.v1.Identity"
PUBLIC_METHODS = {f"/{SERVICE}/{m}" for m in ("SignUp", "Login", "Authenticate", "GetJwks", "Refresh",
                                               "RequestPasswordReset", "ConfirmPasswordReset", "ConfirmEmail")}




def account_message(a: Account) -> pb.Account:
    return pb.Account(
        id=a.id, username=a.username, email=a.email, first_name=a.first_name, last_name=a.last_name,
        company=a.company, job_title=a.job_title, phone=a.phone, country=a.country, region=a.region,
        role=a.role, created_at=to_timestamp(a.created_at), email_verified=a.email_verified_at is not None,
        pending_email=a.pending_email,
    )


def tokens_message(t: Tokens) -> pb.LoginResponse:
    return pb.LoginResponse(token=t.access, expires_at=to_timestamp(t.expires_at), refresh_token=t.refresh,
                            refresh_expires_at=to_timestamp(t.refresh_expires_at))


class IdentityApi(identity_pb2_grpc.IdentityServicer):
    def __init__(self, service: IdentityService) -> None:
        self.service = service

    def SignUp(self, request: pb.SignUpRequest, context: Any) -> pb.SignUpResponse:
        account = self.service.sign_up(SignUp(
            username=request.username, email=request.email, password=request.password,
            first_name=request.first_name, last_name=request.last_name, company=request.company,
            job_title=request.job_title, phone=request.phone, country=request.country,
            marketing_email=request.marketing_email, marketing_telephone=request.marketing_telephone,
            third_party_marketing=request.third_party_marketing, ip_address=request.ip_address, gpc=request.gpc,
        ))
        return pb.SignUpResponse(id=account.id, username=account.username, region=account.region)

    def Login(self, request: pb.LoginRequest, context: Any) -> pb.LoginResponse:
        return tokens_message(self.service.login(request.login, request.password, request.ip_address,
                                                 request.user_agent, request.time_zone))

    def Refresh(self, request: pb.RefreshRequest, context: Any) -> pb.LoginResponse:
        return tokens_message(self.service.refresh(request.refresh_token))

    def RequestPasswordReset(self, request: pb.RequestPasswordResetRequest, context: Any
                             ) -> pb.RequestPasswordResetResponse:
        self.service.recovery.request_reset(request.email, request.ip_address)
        return pb.RequestPasswordResetResponse()

    def ConfirmPasswordReset(self, request: pb.ConfirmPasswordResetRequest, context: Any
                             ) -> pb.ConfirmPasswordResetResponse:
        self.service.recovery.confirm_reset(request.token, request.new_password)
        return pb.ConfirmPasswordResetResponse()

    def ConfirmEmail(self, request: pb.ConfirmEmailRequest, context: Any) -> pb.ConfirmEmailResponse:
        self.service.recovery.confirm_email(request.token)
        return pb.ConfirmEmailResponse()

    def ResendVerification(self, request: pb.ResendVerificationRequest, context: Any
                           ) -> pb.ResendVerificationResponse:
        self.service.recovery.resend_verification(caller.require_person().subject_id)
        return pb.ResendVerificationResponse()

    def ClaimMessageToken(self, request: pb.ClaimMessageTokenRequest, context: Any) -> pb.ClaimMessageTokenResponse:
        # Only the service that sends messages may see a token's secret.
        caller.require_service("consent")
        claimed = self.service.recovery.claim(request.token_id)
        return pb.ClaimMessageTokenResponse(token=claimed.token, purpose=claimed.purpose, email=claimed.email,
                                            expires_at=to_timestamp(claimed.expires_at))

    def Authenticate(self, request: pb.AuthenticateRequest, context: Any) -> pb.AuthenticateResponse:
        p = self.service.authenticate(request.token)
        return pb.AuthenticateResponse(principal=pb.Principal(
            subject_id=p.subject_id, role=p.role, region=p.region, session_id=p.session_id))

    def Logout(self, request: pb.LogoutRequest, context: Any) -> pb.LogoutResponse:
        self.service.logout(caller.require_person())
        return pb.LogoutResponse()

    def GetMe(self, request: pb.GetMeRequest, context: Any) -> pb.Account:
        return account_message(self.service.get_me(caller.require_person()))

    def UpdateMe(self, request: pb.UpdateMeRequest, context: Any) -> pb.Account:
        principal = caller.require_person()
        changes = {f: getattr(request, f) for f in
                   ("country", "email", "first_name", "last_name", "company", "job_title", "phone")
                   if request.HasField(f)}
        return account_message(self.service.update_me(principal, changes))

    def GetJwks(self, request: pb.GetJwksRequest, context: Any) -> pb.GetJwksResponse:
        return pb.GetJwksResponse(jwks_json=json.dumps(self.service.signer.jwks()))

    def CreateUser(self, request: pb.CreateUserRequest, context: Any) -> pb.CreateUserResponse:
        principal = caller.require_any()
        allowed = (principal.is_service and principal.subject_id == "cli") or (
            not principal.is_service and principal.role == "admin")
        if not allowed:
            raise PermissionDenied("only an administrator may create users")
        account = self.service.create_user(NewStaff(
            role=request.role, username=request.username, email=request.email,
            password=request.password, organisation=request.organisation, country=request.country), principal)
        return pb.CreateUserResponse(id=account.id, username=account.username, role=account.role)

    def ListSessions(self, request: pb.ListSessionsRequest, context: Any) -> pb.ListSessionsResponse:
        principal = caller.require_person()
        return pb.ListSessionsResponse(items=[
            pb.SessionInfo(id=s.id, created_at=to_timestamp(s.created_at), last_seen_at=to_timestamp(s.last_seen_at),
                           browser=s.browser, os=s.os, current=s.id == principal.session_id)
            for s in self.service.list_sessions(principal)])

    def RevokeSessions(self, request: pb.RevokeSessionsRequest, context: Any) -> pb.RevokeSessionsResponse:
        return pb.RevokeSessionsResponse(revoked=self.service.revoke_sessions(caller.require_person()))

    def ChangePassword(self, request: pb.ChangePasswordRequest, context: Any) -> pb.ChangePasswordResponse:
        self.service.change_password(caller.require_person(), request.current_password, request.new_password)
        return pb.ChangePasswordResponse()

    def FindAccount(self, request: pb.FindAccountRequest, context: Any) -> pb.FindAccountResponse:
        account = self.service.find_account(request.email, caller.require_service("rights"))
        return pb.FindAccountResponse(subject_id=account.id, region=account.region)

    def GetContact(self, request: pb.GetContactRequest, context: Any) -> pb.GetContactResponse:
        principal = caller.require_service("consent", "rights")
        return _contact_message(self.service.get_contact(request.subject_id, principal))

    def GetContacts(self, request: pb.GetContactsRequest, context: Any) -> pb.GetContactsResponse:
        principal = caller.require_service("consent", "rights")
        answers = self.service.get_contacts(list(request.subject_ids), principal)
        return pb.GetContactsResponse(results=[
            pb.ContactResult(subject_id=subject_id, contact=_contact_message(answer))
            if isinstance(answer, Contact) else pb.ContactResult(subject_id=subject_id, error=status_of(answer).name)
            for subject_id, answer in zip(request.subject_ids, answers, strict=True)])


def _contact_message(contact: Contact) -> pb.GetContactResponse:
    return pb.GetContactResponse(email=contact.email, phone=contact.phone, restricted=contact.restricted)
