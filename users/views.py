"""Accounts and sessions: thin views over users.services and users.selectors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from healthtrack.audit import audit_deny, audit_set
from healthtrack.models import AuditAction
from healthtrack.pagination import LimitSkipPagination
from healthtrack.permissions import (
    Access,
    authorize_subject,
    is_admin,
    is_clinician,
    parse_user_id,
)
from healthtrack.ratelimit import auth_attempt_limit
from users import selectors, services
from users.authentication import SESSION_CLAIM
from users.serializers import (
    CareTeamGrantSerializer,
    CareTeamMembershipSerializer,
    PasswordChangeSerializer,
    PatientMembershipSerializer,
    RegisterSerializer,
    TokenObtainSerializer,
    TokenPairSerializer,
    TokenRefreshSerializer,
    UserProfileSerializer,
    flatten_profile,
)

RESOURCE = "profile"
CARE_TEAM = "care_team"


def _phi_visible_ids(viewer, users) -> set[int]:
    """Ids among ``users`` whose PHI ``viewer`` may see: self, admins, care team."""
    if is_admin(viewer):
        return {user.pk for user in users}
    visible = {viewer.pk}
    if is_clinician(viewer):
        visible |= selectors.patient_ids_of(clinician_id=viewer.pk)
    return visible


def _profile_data(viewer, users) -> list[dict]:
    phi_visible = _phi_visible_ids(viewer, users)
    rows = []
    for user in users:
        data = UserProfileSerializer(user).data
        if user.pk not in phi_visible:
            # Account managers (support staff) see the account, never the PHI in it.
            data["date_of_birth"] = None
            data["medical_history"] = None
        rows.append(data)
    return rows


def _profile_response(request, user, *, status_code=status.HTTP_200_OK) -> Response:
    return Response(_profile_data(request.user, [user])[0], status=status_code)


def _submitted_username(request) -> str | None:
    """The ``username`` of a sign-in/sign-up body, counted before it is validated.

    Read as the serializer will read it (a JSON number is a username too), so sending
    it in another JSON type cannot dodge the per-username limit.
    """
    value = request.data.get("username") if isinstance(request.data, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


class PublicView(APIView):
    """Open to anonymous callers; failed credentials still answer 401 with a challenge."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'


class RegisterView(PublicView):
    @extend_schema(
        tags=["auth"],
        summary="Sign up",
        request=RegisterSerializer,
        responses={201: UserProfileSerializer},
    )
    def post(self, request):
        auth_attempt_limit(request, action="register", username=_submitted_username(request))
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**flatten_profile(serializer.validated_data))
        audit_set(
            request, action=AuditAction.CREATE, resource_type=RESOURCE, subject_id=user.pk, actor_id=user.pk
        )
        return Response(UserProfileSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenObtainView(PublicView):
    @extend_schema(
        tags=["auth"],
        summary="Sign in with username or email",
        request=TokenObtainSerializer,
        responses={200: TokenPairSerializer},
    )
    def post(self, request):
        auth_attempt_limit(request, action="login", username=_submitted_username(request))
        serializer = TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        login = serializer.validated_data["username"]
        user, tokens = services.auth_login(
            request=request, login=login, password=serializer.validated_data["password"]
        )
        if user is None:
            known = selectors.user_find_by_login(login)
            audit_set(
                request,
                action=AuditAction.LOGIN_FAILED,
                resource_type="session",
                subject_id=known.pk if known else None,
            )
            raise AuthenticationFailed(
                "No active account found with the given credentials.", code="invalid_credentials"
            )
        audit_set(
            request, action=AuditAction.LOGIN, resource_type="session", subject_id=user.pk, actor_id=user.pk
        )
        return Response(tokens)


class TokenRefreshView(PublicView):
    @extend_schema(
        tags=["auth"],
        summary="Rotate a refresh token",
        description="The refresh token is used up; a new access/refresh pair is returned.",
        request=TokenRefreshSerializer,
        responses={200: TokenPairSerializer},
    )
    def post(self, request):
        serializer = TokenRefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(services.auth_tokens_refresh(raw_refresh=serializer.validated_data["refresh"]))


class LogoutView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        summary="Sign out",
        description="Ends the session: its refresh token and every access token of it are refused.",
        request=TokenRefreshSerializer,
        responses={204: OpenApiResponse(description="Signed out.")},
    )
    def post(self, request):
        serializer = TokenRefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        access_session = request.auth.get(SESSION_CLAIM) if request.auth is not None else None
        user = services.auth_logout(
            raw_refresh=serializer.validated_data["refresh"],
            access_session_id=access_session,
            access_user_id=request.user.pk if request.user.is_authenticated else None,
        )
        audit_set(
            request, action=AuditAction.LOGOUT, resource_type="session", subject_id=user.pk, actor_id=user.pk
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    @extend_schema(
        tags=["auth"],
        summary="Change password",
        description="Every existing session ends; a new token pair is returned.",
        request=PasswordChangeSerializer,
        responses={200: TokenPairSerializer},
    )
    def post(self, request):
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tokens = services.auth_password_change(user=request.user, **serializer.validated_data)
        audit_set(request, action=AuditAction.UPDATE, resource_type="password", subject_id=request.user.pk)
        return Response(tokens)


class _ProfileUpdateMixin:
    def _update(self, request, user_id: int, *, partial: bool) -> Response:
        authorize_subject(request, user_id, Access.WRITE, resource_type=RESOURCE)
        user = selectors.user_get_visible(actor=request.user, user_id=user_id)
        if user is None:
            raise NotFound()
        serializer = UserProfileSerializer(user, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(user=user, data=flatten_profile(serializer.validated_data))
        audit_set(request, action=AuditAction.UPDATE, resource_type=RESOURCE, subject_id=user.pk)
        return _profile_response(request, user)

    def _deactivate(self, request, user_id: int) -> Response:
        authorize_subject(request, user_id, Access.MANAGE_ACCOUNT, resource_type=RESOURCE)
        services.user_deactivate(user_id=user_id)
        audit_set(request, action=AuditAction.DELETE, resource_type=RESOURCE, subject_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(_ProfileUpdateMixin, APIView):
    @extend_schema(tags=["users"], summary="Own profile", responses={200: UserProfileSerializer})
    def get(self, request):
        user = selectors.user_get_visible(actor=request.user, user_id=request.user.pk)
        audit_set(request, action=AuditAction.READ, resource_type=RESOURCE, subject_id=request.user.pk)
        return _profile_response(request, user)

    @extend_schema(
        tags=["users"],
        summary="Replace own profile",
        request=UserProfileSerializer,
        responses={200: UserProfileSerializer},
    )
    def put(self, request):
        return self._update(request, request.user.pk, partial=False)

    @extend_schema(
        tags=["users"],
        summary="Change own profile",
        request=UserProfileSerializer,
        responses={200: UserProfileSerializer},
    )
    def patch(self, request):
        return self._update(request, request.user.pk, partial=True)

    @extend_schema(
        tags=["users"],
        summary="Delete own account (soft)",
        description="The account is deactivated now and every token stops working; health "
        "data is erased by purge_deleted_users after the retention period.",
        responses={204: OpenApiResponse(description="Deactivated.")},
    )
    def delete(self, request):
        return self._deactivate(request, request.user.pk)


class UserListView(GenericAPIView):
    pagination_class = LimitSkipPagination
    serializer_class = UserProfileSerializer

    def get_queryset(self):
        return selectors.user_list(actor=self.request.user)

    @extend_schema(
        tags=["users"],
        summary="Users the caller may see",
        responses={200: UserProfileSerializer(many=True)},
        operation_id="users_list",
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        audit_set(
            request,
            action=AuditAction.READ,
            resource_type=RESOURCE,
            subject_id=page[0].pk if len(page) == 1 else None,
            object_ids=[user.pk for user in page],
        )
        return self.get_paginated_response(_profile_data(request.user, page))


class UserDetailView(_ProfileUpdateMixin, APIView):
    @extend_schema(
        tags=["users"], summary="A profile the caller may see", responses={200: UserProfileSerializer}
    )
    def get(self, request, user_id: int):
        user_id = parse_user_id(user_id)
        user = selectors.user_get_visible(actor=request.user, user_id=user_id)
        if user is None:
            authorize_subject(request, user_id, Access.READ, resource_type=RESOURCE)
            raise NotFound()
        audit_set(request, action=AuditAction.READ, resource_type=RESOURCE, subject_id=user.pk)
        return _profile_response(request, user)

    @extend_schema(
        tags=["users"],
        summary="Replace a profile",
        request=UserProfileSerializer,
        responses={200: UserProfileSerializer},
    )
    def put(self, request, user_id: int):
        return self._update(request, parse_user_id(user_id), partial=False)

    @extend_schema(
        tags=["users"],
        summary="Change a profile",
        request=UserProfileSerializer,
        responses={200: UserProfileSerializer},
    )
    def patch(self, request, user_id: int):
        return self._update(request, parse_user_id(user_id), partial=True)

    @extend_schema(
        tags=["users"],
        summary="Deactivate an account (soft delete)",
        responses={204: OpenApiResponse(description="Deactivated.")},
    )
    def delete(self, request, user_id: int):
        return self._deactivate(request, parse_user_id(user_id))


class UserByUsernameView(APIView):
    @extend_schema(tags=["users"], summary="A profile by username", responses={200: UserProfileSerializer})
    def get(self, request, username: str):
        user = selectors.user_get_visible_by_username(actor=request.user, username=username)
        if user is None:
            audit_set(request, action=AuditAction.DENIED, resource_type=RESOURCE, object_ids=[username])
            raise NotFound()
        audit_set(request, action=AuditAction.READ, resource_type=RESOURCE, subject_id=user.pk)
        return _profile_response(request, user)


# --- Care team ----------------------------------------------------------------------


class CareTeamView(GenericAPIView):
    """The caller's own care team: the clinicians who may read their data."""

    pagination_class = LimitSkipPagination
    serializer_class = CareTeamMembershipSerializer

    def get_queryset(self):
        return selectors.care_team_of(patient_id=self.request.user.pk)

    @extend_schema(
        tags=["care team"],
        summary="Clinicians with access to my data",
        responses={200: CareTeamMembershipSerializer(many=True)},
        operation_id="users_me_care_team_list",
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        audit_set(
            request,
            action=AuditAction.READ,
            resource_type=CARE_TEAM,
            subject_id=request.user.pk,
            object_ids=[membership.pk for membership in page],
        )
        return self.get_paginated_response(CareTeamMembershipSerializer(page, many=True).data)

    @extend_schema(
        tags=["care team"],
        summary="Give a clinician access to my data",
        description="Only active clinicians can be granted. Granting someone already on the "
        "team is not an error: the existing membership is returned with 200.",
        request=CareTeamGrantSerializer,
        responses={201: CareTeamMembershipSerializer, 200: CareTeamMembershipSerializer},
        operation_id="users_me_care_team_create",
    )
    def post(self, request):
        serializer = CareTeamGrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership, created = services.care_team_grant(
            patient=request.user, clinician_login=serializer.validated_data["clinician"]
        )
        audit_set(
            request,
            action=AuditAction.CREATE,
            resource_type=CARE_TEAM,
            subject_id=request.user.pk,
            object_ids=[membership.pk],
        )
        return Response(
            CareTeamMembershipSerializer(membership).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class CareTeamMemberView(APIView):
    @extend_schema(
        tags=["care team"],
        summary="Revoke a clinician's access to my data",
        operation_id="users_me_care_team_destroy",
        description="Takes effect on the clinician's next request.",
        responses={204: OpenApiResponse(description="Revoked.")},
    )
    def delete(self, request, membership_id: int):
        # parse_user_id bounds any bigint primary key: a huge id is a 404, not a 500.
        membership = selectors.care_team_membership_get(membership_id=parse_user_id(membership_id))
        if membership is None:
            raise NotFound()
        if membership.patient_id != request.user.pk:
            # Someone else's care team: not disclosed, and the attempt is on the trail.
            audit_deny(
                request, resource_type=CARE_TEAM, subject_id=membership.patient_id, object_ids=[membership.pk]
            )
            raise NotFound()
        services.care_team_revoke(membership=membership)
        audit_set(
            request,
            action=AuditAction.DELETE,
            resource_type=CARE_TEAM,
            subject_id=request.user.pk,
            object_ids=[membership_id],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PatientListView(GenericAPIView):
    """A clinician's patients: who put them on their care team."""

    pagination_class = LimitSkipPagination
    serializer_class = PatientMembershipSerializer

    def get_queryset(self):
        return selectors.patients_of(clinician_id=self.request.user.pk)

    @extend_schema(
        tags=["care team"],
        summary="My patients (clinicians)",
        description="Active patients who granted the caller access. 403 for callers who are not clinicians.",
        responses={200: PatientMembershipSerializer(many=True)},
        operation_id="users_me_patients_list",
    )
    def get(self, request):
        if not is_clinician(request.user):
            raise PermissionDenied("Only clinicians have patients.")
        page = self.paginate_queryset(self.get_queryset())
        audit_set(
            request,
            action=AuditAction.READ,
            resource_type=CARE_TEAM,
            subject_id=page[0].patient_id if len(page) == 1 else None,
            object_ids=[membership.patient_id for membership in page],
        )
        return self.get_paginated_response(PatientMembershipSerializer(page, many=True).data)
