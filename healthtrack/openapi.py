"""OpenAPI generation: every operation documents the errors it can answer with."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object

from healthtrack.serializers import ErrorSerializer

_ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `errors` names each field and the reason.",
    "401": "Missing, expired or revoked bearer token.",
    "403": "Authenticated, but this action is not allowed for the caller's role.",
    "404": "No such object, or it belongs to someone the caller may not see.",
    "409": "Conflicts with the current state.",
    "413": "Request body over this endpoint's limit.",
    "414": "Request line (path and query string) over 4094 bytes; answered by the server "
    "before the API sees the request.",
    "415": "Unsupported Content-Type (send application/json).",
    "429": "Rate limit exceeded; see Retry-After.",
    "500": "Unexpected server error (logged with the request id).",
    "503": "A backing service (the database) is unavailable; retry shortly.",
}


class AutoSchema(SpectacularAutoSchema):
    def _error_codes(self) -> list[str]:
        codes = ["400", "404", "414", "429", "500", "503"]
        if self.get_auth():
            codes += ["401", "403"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415"]
        return codes

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        # Request bodies of serializers that refuse unknown keys (StrictFieldsMixin, or
        # ``refuses_unknown_fields = True``) say so, so clients and the fuzzer do not send
        # keys the API answers with a 400.
        if (
            direction == "request"
            and getattr(serializer, "refuses_unknown_fields", False)
            and schema.get("type") == "object"
        ):
            schema["additionalProperties"] = False
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = _ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return dict(sorted(responses.items()))


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "users.authentication.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106 - a scheme name, not a secret
            bearer_format="JWT",
        )
