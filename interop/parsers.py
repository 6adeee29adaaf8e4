"""Request body parsers of the import routes."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, JSONParser, MultiPartParser

from interop.fhir import FHIR_JSON


class FhirJSONParser(JSONParser):
    """``application/fhir+json``: FHIR's media type for JSON, parsed as JSON."""

    media_type = FHIR_JSON


class DiskMultiPartParser(MultiPartParser):
    """``multipart/form-data`` whose files always stream to a temporary file on disk.

    Django's default handlers keep uploads under FILE_UPLOAD_MAX_MEMORY_SIZE in memory;
    an export can be hundreds of megabytes, so here every file goes to disk as it
    arrives, 64 kB at a time, whatever its size. Django deletes the file when the
    request ends.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        handlers = [TemporaryFileUploadHandler(getattr(request, "_request", request))]
        try:
            data, files = DjangoMultiPartParser(meta, stream, handlers, encoding).parse()
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from None
        return DataAndFiles(data, files)
