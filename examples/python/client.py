"""A minimal ktp-gateway client, the way a Python service team would write one.

Calls ktp.v1.KtpService/GetKtpResult once for a success and twice for errors,
then submits a card image and waits for its result on the server side
(SubmitKtp, then GetKtpResult with wait), then asks for two fields only (a
read_mask) of a card whose NIK disagrees with its gender, with its
consistency checks, and prints one JSON object per call on stdout. Errors are decoded from the
`grpc-status-details-bin` trailer into a google.rpc.Status and its details
(ErrorInfo, RetryInfo, BadRequest, RequestInfo).

The stubs (ktp/v1/ktp_pb2.py, ktp/v1/ktp_pb2_grpc.py) are generated from
proto/ with grpcio-tools and put on PYTHONPATH; see README.md.

Usage: python client.py [HOST:PORT]   (else $KTP_GATEWAY_ADDR, else localhost:50051)
"""

import json
import os
import sys

import grpc
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ktp.v1 import ktp_pb2, ktp_pb2_grpc

# The reference ids of the gateway's sandbox (README, "Sandbox").
CALLS = [
    "REFERENCE_ID_KTP",  # OK
    "REFERENCE_ID_ERROR_RATE_LIMITED",  # UNAVAILABLE, RetryInfo 2 s
    "",  # INVALID_ARGUMENT, BadRequest on reference_id
]
TIMEOUT_SECONDS = 10
# A blank card-sized PNG: the sandbox answers its fictional card for any image.
IMAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "blank-720x480.png")


def get_ktp_result(stub, reference_id):
    """One call; returns a JSON-ready summary of its result."""
    summary = {"reference_id": reference_id}
    try:
        response, call = stub.GetKtpResult.with_call(
            ktp_pb2.GetKtpResultRequest(reference_id=reference_id),
            timeout=TIMEOUT_SECONDS,
        )
    except grpc.RpcError as err:
        summary.update(describe_error(err))
        return summary
    summary.update(
        code="OK",
        request_id=dict(call.initial_metadata()).get("x-request-id", ""),
        full_name=response.full_name,
        gender_value=ktp_pb2.Gender.Name(response.gender_value),
    )
    return summary


def submit_and_wait(stub):
    """Submits an image, then waits on the server side for the job's result:
    no polling loop on the client, and never the vendor's keys."""
    with open(IMAGE, "rb") as f:
        image = f.read()
    summary = {"call": "submit_and_wait"}
    try:
        submitted = stub.SubmitKtp(
            ktp_pb2.SubmitKtpRequest(image=image, validate_quality=True),
            timeout=TIMEOUT_SECONDS,
        )
        # The job runs for a few seconds; the gateway asks for us until it is done.
        response, call = stub.GetKtpResult.with_call(
            ktp_pb2.GetKtpResultRequest(reference_id=submitted.reference_id, wait=True),
            timeout=TIMEOUT_SECONDS,
        )
    except grpc.RpcError as err:
        summary.update(describe_error(err))
        return summary
    summary.update(
        code="OK",
        reference_id=response.reference_id,
        submitted_reference_id=submitted.reference_id,
        request_id=dict(call.initial_metadata()).get("x-request-id", ""),
        full_name=response.full_name,
    )
    return summary


def read_mask_and_checks(stub):
    """Only the fields a service needs (read_mask; reference_id always comes),
    and the checks of whether the OCR read the card consistently. Checks are
    advisory: a FAIL is a reason to look again, not an error."""
    reference_id = "REFERENCE_ID_KTP_NIK_GENDER_MISMATCH"
    summary = {"call": "read_mask_and_checks", "reference_id": reference_id}
    try:
        response, call = stub.GetKtpResult.with_call(
            ktp_pb2.GetKtpResultRequest(
                reference_id=reference_id,
                read_mask=field_mask_pb2.FieldMask(paths=["full_name", "checks"]),
            ),
            timeout=TIMEOUT_SECONDS,
        )
    except grpc.RpcError as err:
        summary.update(describe_error(err))
        return summary
    checks = response.checks
    summary.update(
        code="OK",
        request_id=dict(call.initial_metadata()).get("x-request-id", ""),
        fields=sorted(field.name for field, _ in response.ListFields()),
        checks={
            name: ktp_pb2.CheckResult.Name(getattr(checks, name))
            for name in ("nik_format", "nik_birth_date", "nik_gender", "nik_province")
        },
    )
    return summary


def describe_error(err):
    """The code, message and rich details of a failed call."""
    summary = {"code": err.code().name, "message": err.details()}
    # rpc_status.from_call reads grpc-status-details-bin from the trailing
    # metadata and checks it agrees with the call's code and message.
    status = rpc_status.from_call(err)
    if status is None:
        return summary
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            summary.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            summary["retry_delay_seconds"] = retry.retry_delay.ToTimedelta().total_seconds()
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            summary["field_violations"] = [v.field for v in bad_request.field_violations]
        elif detail.Is(error_details_pb2.RequestInfo.DESCRIPTOR):
            request_info = error_details_pb2.RequestInfo()
            detail.Unpack(request_info)
            summary["request_id"] = request_info.request_id
    return summary


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KTP_GATEWAY_ADDR", "localhost:50051")
    with grpc.insecure_channel(addr) as channel:
        stub = ktp_pb2_grpc.KtpServiceStub(channel)
        for reference_id in CALLS:
            print(json.dumps(get_ktp_result(stub, reference_id), sort_keys=True), flush=True)
        print(json.dumps(submit_and_wait(stub), sort_keys=True), flush=True)
        print(json.dumps(read_mask_and_checks(stub), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
