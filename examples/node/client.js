// A minimal ktp-gateway client, the way a Node.js service team would write one.
//
// Loads the contract from proto/ at run time (@grpc/proto-loader), calls
// ktp.v1.KtpService/GetKtpResult once for a success and twice for errors, then
// submits a card image and waits for its result on the server side (SubmitKtp,
// then GetKtpResult with wait), then asks for two fields only (a read_mask) of
// a card whose NIK disagrees with its gender, with its consistency checks, and
// prints one JSON object per call on stdout. Errors are decoded from the
// `grpc-status-details-bin` trailer into a google.rpc.Status and its details
// (ErrorInfo, RetryInfo, BadRequest, RequestInfo) with protobufjs, against the
// google.rpc protos of the google-proto-files package.
//
// Usage: node client.js [HOST:PORT]   (else $KTP_GATEWAY_ADDR, else localhost:50051)
// $KTP_PROTO_DIR overrides where the contract is read from (default ../../proto).

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const googleProtos = require('google-proto-files');

// The reference ids of the gateway's sandbox (README, "Sandbox").
const CALLS = [
  'REFERENCE_ID_KTP', // OK
  'REFERENCE_ID_ERROR_RATE_LIMITED', // UNAVAILABLE, RetryInfo 2 s
  '', // INVALID_ARGUMENT, BadRequest on reference_id
];
const TIMEOUT_MS = 10_000;
// A blank card-sized PNG: the sandbox answers its fictional card for any image.
const IMAGE = path.join(__dirname, '..', 'data', 'blank-720x480.png');

const PROTO_DIR = process.env.KTP_PROTO_DIR || path.join(__dirname, '..', '..', 'proto');

// The contract, with proto field names and enum names as strings.
const ktp = grpc.loadPackageDefinition(
  protoLoader.loadSync('ktp/v1/ktp.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    enums: String,
    longs: String,
    defaults: true,
  }),
).ktp.v1;

// google.rpc.Status and the error detail types, for grpc-status-details-bin.
const rpcTypes = new protobuf.Root().loadSync(
  [googleProtos.getProtoPath('rpc', 'status.proto'), googleProtos.getProtoPath('rpc', 'error_details.proto')],
  { keepCase: true },
);
const Status = rpcTypes.lookupType('google.rpc.Status');

/** One call; resolves to a JSON-ready summary of its result. */
function getKtpResult(client, referenceId) {
  return new Promise((resolve) => {
    let requestId = '';
    const call = client.GetKtpResult(
      { reference_id: referenceId },
      { deadline: Date.now() + TIMEOUT_MS },
      (err, response) => {
        if (err) {
          resolve({ reference_id: referenceId, ...describeError(err) });
          return;
        }
        resolve({
          reference_id: referenceId,
          code: 'OK',
          request_id: requestId,
          full_name: response.full_name,
          gender_value: response.gender_value,
        });
      },
    );
    call.on('metadata', (metadata) => {
      requestId = String(metadata.get('x-request-id')[0] || '');
    });
  });
}

/** A unary call as a promise, with the response's x-request-id. */
function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    let requestId = '';
    const call = client[method](request, { deadline: Date.now() + TIMEOUT_MS }, (err, response) =>
      err ? reject(err) : resolve({ response, requestId }),
    );
    call.on('metadata', (metadata) => {
      requestId = String(metadata.get('x-request-id')[0] || '');
    });
  });
}

/**
 * Submits an image, then waits on the server side for the job's result: no
 * polling loop on the client, and never the vendor's keys.
 */
async function submitAndWait(client) {
  try {
    const submitted = await unary(client, 'SubmitKtp', {
      image: fs.readFileSync(IMAGE),
      validate_quality: true,
    });
    const referenceId = submitted.response.reference_id;
    // The job runs for a few seconds; the gateway asks for us until it is done.
    const { response, requestId } = await unary(client, 'GetKtpResult', { reference_id: referenceId, wait: true });
    return {
      call: 'submit_and_wait',
      code: 'OK',
      reference_id: response.reference_id,
      submitted_reference_id: referenceId,
      request_id: requestId,
      full_name: response.full_name,
    };
  } catch (err) {
    return { call: 'submit_and_wait', ...describeError(err) };
  }
}

/**
 * Only the fields a service needs (read_mask; reference_id always comes), and
 * the checks of whether the OCR read the card consistently. Checks are
 * advisory: a FAIL is a reason to look again, not an error.
 */
async function readMaskAndChecks(client) {
  const referenceId = 'REFERENCE_ID_KTP_NIK_GENDER_MISMATCH';
  const summary = { call: 'read_mask_and_checks', reference_id: referenceId };
  try {
    const { response, requestId } = await unary(client, 'GetKtpResult', {
      reference_id: referenceId,
      read_mask: { paths: ['full_name', 'checks'] },
    });
    // With `defaults: true` every field is present; the set ones are those
    // that differ from their default.
    const isSet = ([, v]) => v !== null && v !== '' && v !== 0 && !(typeof v === 'string' && v.endsWith('_UNSPECIFIED'));
    const { nik_format, nik_birth_date, nik_gender, nik_province } = response.checks;
    return {
      ...summary,
      code: 'OK',
      request_id: requestId,
      fields: Object.entries(response).filter(isSet).map(([k]) => k).sort(),
      checks: { nik_format, nik_birth_date, nik_gender, nik_province },
    };
  } catch (err) {
    return { ...summary, ...describeError(err) };
  }
}

/** The code, message and rich details of a failed call. */
function describeError(err) {
  const summary = { code: grpc.status[err.code], message: err.details };
  const [bin] = err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
  if (!bin) return summary;
  const status = Status.decode(bin);
  for (const any of status.details) {
    // type_url is "type.googleapis.com/google.rpc.ErrorInfo".
    const typeName = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    const type = rpcTypes.lookup(typeName);
    if (!(type instanceof protobuf.Type)) continue; // a detail type this client does not know
    const detail = type.toObject(type.decode(any.value), { longs: Number, defaults: true });
    switch (typeName) {
      case 'google.rpc.ErrorInfo':
        Object.assign(summary, { reason: detail.reason, domain: detail.domain, metadata: detail.metadata });
        break;
      case 'google.rpc.RetryInfo':
        summary.retry_delay_seconds = detail.retry_delay.seconds + detail.retry_delay.nanos / 1e9;
        break;
      case 'google.rpc.BadRequest':
        summary.field_violations = detail.field_violations.map((v) => v.field);
        break;
      case 'google.rpc.RequestInfo':
        summary.request_id = detail.request_id;
        break;
      default:
        break;
    }
  }
  return summary;
}

/** JSON with sorted keys, like the Python example's output. */
function sortedJson(value) {
  return JSON.stringify(value, (_, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

async function main() {
  const addr = process.argv[2] || process.env.KTP_GATEWAY_ADDR || 'localhost:50051';
  const client = new ktp.KtpService(addr, grpc.credentials.createInsecure());
  try {
    for (const referenceId of CALLS) {
      console.log(sortedJson(await getKtpResult(client, referenceId)));
    }
    console.log(sortedJson(await submitAndWait(client)));
    console.log(sortedJson(await readMaskAndChecks(client)));
  } finally {
    client.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
