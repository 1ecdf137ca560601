"""Every S3 error the gateway can answer, as data, and the one exception that answers a request.

Raise ``S3Error("NoSuchKey")`` anywhere on a request's path: the pipeline's entry
(``proxy.entry``) answers it as S3 XML (``exchange.error_response``) with the status from
:data:`ERRORS` and the request id. Messages never contain secrets.
"""
from __future__ import annotations

from xml.sax.saxutils import escape

# code -> (HTTP status, default message). One definition per error.
ERRORS: dict[str, tuple[int, str]] = {
    # 400
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the X-Amz-Credential parameter."),
    "BadDigest": (400, "The Content-MD5 or checksum you specified did not match what was received."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed object size."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed object size."),
    "ExpiredRequest": (400, "Request has expired."),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the Content-Length HTTP header."),
    "InvalidArgument": (400, "Invalid Argument."),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidObjectName": (400, "The specified object name is not valid."),
    "InvalidPart": (400, "One or more of the specified parts could not be found."),
    "InvalidRequest": (400, "Invalid Request."),
    "InvalidStorageClass": (400, "The storage class you specified is not valid."),
    "KeyTooLongError": (400, "Your key is too long."),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate against our published schema."),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the server's time is too large."),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not match what was computed."),
    "InvalidLocationConstraint": (400, "The specified location-constraint is not valid."),
    "InvalidEncryptionAlgorithmError": (400, "The encryption request you specified is not valid."),
    "RequestTimeout": (400, "Your socket connection to the server was not read from or written to within the timeout period."),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "InvalidTag": (400, "The tag provided was not a valid tag."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order."),
    "BadRequest": (400, "An error occurred when parsing the HTTP request."),
    "RequestHeaderSectionTooLarge": (400, "Your request header section exceeds the maximum allowed size."),
    "ExpectationFailed": (417, "The Expect header holds an expectation the server cannot meet: only 100-continue is supported."),
    # 401 / 403
    "Unauthorized": (401, "Unauthorized"),
    "AccessDenied": (403, "Access Denied"),
    "InvalidAccessKeyId": (403, "The AWS Access Key Id you provided does not exist in our records."),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the signature you provided. Check your key and signing method."),
    # 404
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (404, "The specified multipart upload does not exist."),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist."),
    "NoSuchLifecycleConfiguration": (404, "The lifecycle configuration does not exist."),
    # 405 / 409 / 411 / 412 / 413 / 416
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketAlreadyOwnedByYou": (409, "Your previous request to create the named bucket succeeded and you already own it."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "OperationAborted": (409, "A conflicting conditional operation is currently in progress against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold."),
    "RequestEntityTooLarge": (413, "Request entity too large."),
    "InvalidRange": (416, "The requested range is not satisfiable."),
    "InvalidPartNumber": (416, "The requested partnumber is not satisfiable."),
    # 429 / 5xx
    "TooManyRequests": (429, "Reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented."),
    "BadGateway": (502, "The upstream returned an invalid response."),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "SlowDown": (503, "Please reduce your request rate."),
    "GatewayTimeout": (504, "The upstream did not answer in time."),
}


class GatewayError(Exception):
    """Root of every exception the gateway raises on purpose."""


class ClientClosed(ConnectionResetError):
    """The client went away (or stopped reading) while it was being answered: nothing more can be
    sent. Logged as status 499, as nginx does; never counted as an upstream failure."""


class UpstreamBroken(ConnectionResetError):
    """The upstream's body broke off after the answer's head had been sent: the client's
    connection is cut (a short body must never pass for a whole one). Logged as status 502."""


class S3Error(GatewayError):
    """An S3 error that is also a response: raising it answers the request.

    ``fields`` become extra XML elements (e.g. ``BucketName``, ``Key``, ``Header``); values are
    rendered as text, so never pass a secret in them.
    """

    __slots__ = ("code", "status", "message", "fields", "headers")

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 headers: dict[str, str] | None = None, **fields: str) -> None:
        default_status, default_message = ERRORS.get(code, (500, code))
        self.code = code
        self.status = status or default_status
        self.message = message or default_message
        self.fields = fields
        self.headers = headers or {}
        super().__init__(f"{code}: {self.message}")

    def to_xml(self, request_id: str, resource: str | None = None) -> bytes:
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>', escape(self.code),
                 "</Code><Message>", escape(self.message), "</Message>"]
        for name, value in self.fields.items():
            parts += ["<", name, ">", escape(str(value)), "</", name, ">"]
        if resource is not None:
            parts += ["<Resource>", escape(resource), "</Resource>"]
        parts += ["<RequestId>", escape(request_id), "</RequestId></Error>"]
        return "".join(parts).encode()


def not_implemented(feature: str) -> S3Error:
    """R2's wording for an operation it does not implement: ``GetObjectTagging not implemented``."""
    return S3Error("NotImplemented", f"{feature} not implemented")


def header_not_implemented(name: str, value: str) -> S3Error:
    """R2's wording: ``Header 'x-amz-acl' with value 'public-read' not implemented``."""
    return S3Error("NotImplemented", f"Header '{name}' with value '{value}' not implemented", Header=name)
