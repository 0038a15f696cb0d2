// A ktp-gateway client built with Connect-ES, the way a Node.js team that
// generates its code would write one.
//
// The same five calls as client.js, with the same printed JSON: GetKtpResult
// once for a success and twice for errors, SubmitKtp then a waiting
// GetKtpResult, and a read_mask with the consistency checks. The code comes
// from protoc-gen-es (gen/, `npm run generate`); the calls go through
// @connectrpc/connect-node over the Connect protocol (JSON, or binary
// protobuf with --binary) or gRPC-Web (always binary), on HTTP/1.1 or
// HTTP/2 cleartext. Errors are ConnectErrors whose details (google.rpc
// ErrorInfo, RetryInfo, BadRequest, RequestInfo) are decoded with the
// generated schemas, whichever protocol carried them.
//
// Usage: node connect-client.mjs [--transport connect|grpc-web] [--binary]
//                                [--http 1.1|2] [HOST:PORT]
// The address is the argument, else $KTP_GATEWAY_ADDR, else localhost:50051
// (plain http). $KTP_GATEWAY_TOKEN, when set, is sent as a bearer token.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { create, toJson } from '@bufbuild/protobuf';
import { ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';

import { GetKtpResultResponseSchema, KtpChecksSchema, KtpService } from './gen/ktp/v1/ktp_pb.js';
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RequestInfoSchema,
  RetryInfoSchema,
} from './gen/google/rpc/error_details_pb.js';

// The reference ids of the gateway's sandbox (README, "Sandbox").
const CALLS = [
  'REFERENCE_ID_KTP', // OK
  'REFERENCE_ID_ERROR_RATE_LIMITED', // UNAVAILABLE, RetryInfo 2 s
  '', // INVALID_ARGUMENT, BadRequest on reference_id
];
const TIMEOUT_MS = 10_000;
// A blank card-sized PNG: the sandbox answers its fictional card for any image.
const IMAGE = new URL('../data/blank-720x480.png', import.meta.url);

// Connect's codes are gRPC's numbers; these are their gRPC names, as
// client.js prints them (Connect's own names are "unavailable", ...).
const GRPC_CODE_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND',
  'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION',
  'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS',
  'UNAUTHENTICATED',
];

// Proto field names and enum names as strings, as client.js prints them.
const JSON_OPTIONS = { useProtoFieldName: true };

const USAGE =
  'usage: node connect-client.mjs [--transport connect|grpc-web] [--binary] [--http 1.1|2] [HOST:PORT]';

/** The command line; exits 2 with the usage on a bad one. */
function options() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        transport: { type: 'string', default: 'connect' },
        binary: { type: 'boolean', default: false },
        http: { type: 'string', default: '1.1' },
      },
    });
  } catch (err) {
    fail(err.message);
  }
  const { values, positionals } = parsed;
  if (!['connect', 'grpc-web'].includes(values.transport)) fail(`unknown --transport ${values.transport}`);
  if (!['1.1', '2'].includes(values.http)) fail(`unknown --http ${values.http}`);
  if (positionals.length > 1) fail('at most one address');
  const addr = positionals[0] || process.env.KTP_GATEWAY_ADDR || 'localhost:50051';
  return { ...values, addr };
}

function fail(why) {
  console.error(`connect-client.mjs: ${why}\n${USAGE}`);
  process.exit(2);
}

/** The transport the options name, with the bearer token when there is one. */
function transport({ transport, binary, http, addr }) {
  const token = process.env.KTP_GATEWAY_TOKEN;
  const interceptors = token
    ? [(next) => (request) => {
        request.header.set('authorization', `Bearer ${token}`);
        return next(request);
      }]
    : [];
  const common = { baseUrl: `http://${addr}`, httpVersion: http, interceptors };
  return transport === 'connect'
    ? // connect-node defaults to binary; JSON (application/json) unless --binary.
      createConnectTransport({ ...common, useBinaryFormat: binary })
    : // application/grpc-web+proto: the gateway speaks no gRPC-Web JSON.
      createGrpcWebTransport({ ...common, useBinaryFormat: true });
}

/** A unary call with a deadline; resolves to its response and x-request-id. */
async function unary(call, request) {
  let requestId = '';
  const response = await call(request, {
    timeoutMs: TIMEOUT_MS,
    onHeader: (headers) => {
      requestId = headers.get('x-request-id') || '';
    },
  });
  return { response, requestId };
}

/** One GetKtpResult; resolves to a JSON-ready summary of its result. */
async function getKtpResult(client, referenceId) {
  try {
    const { response, requestId } = await unary(client.getKtpResult, { referenceId });
    const json = toJson(GetKtpResultResponseSchema, response, JSON_OPTIONS);
    return {
      reference_id: referenceId,
      code: 'OK',
      request_id: requestId,
      full_name: json.full_name,
      gender_value: json.gender_value,
    };
  } catch (err) {
    return { reference_id: referenceId, ...describeError(err) };
  }
}

/**
 * Submits an image, then waits on the server side for the job's result: no
 * polling loop on the client, and never the vendor's keys.
 */
async function submitAndWait(client) {
  try {
    const submitted = await unary(client.submitKtp, {
      imageSource: { case: 'image', value: readFileSync(IMAGE) },
      validateQuality: true,
    });
    const referenceId = submitted.response.referenceId;
    // The job runs for a few seconds; the gateway asks for us until it is done.
    const { response, requestId } = await unary(client.getKtpResult, { referenceId, wait: true });
    return {
      call: 'submit_and_wait',
      code: 'OK',
      reference_id: response.referenceId,
      submitted_reference_id: referenceId,
      request_id: requestId,
      full_name: response.fullName,
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
    const { response, requestId } = await unary(client.getKtpResult, {
      referenceId,
      readMask: { paths: ['full_name', 'checks'] },
    });
    // Proto3 JSON leaves out the fields that hold their default: the set ones.
    const fields = Object.keys(toJson(GetKtpResultResponseSchema, response, JSON_OPTIONS)).sort();
    const checks = toJson(KtpChecksSchema, response.checks ?? create(KtpChecksSchema), {
      ...JSON_OPTIONS,
      alwaysEmitImplicit: true,
    });
    return { ...summary, code: 'OK', request_id: requestId, fields, checks };
  } catch (err) {
    return { ...summary, ...describeError(err) };
  }
}

/** The code, message and rich details of a failed call. */
function describeError(thrown) {
  const err = ConnectError.from(thrown);
  const summary = { code: GRPC_CODE_NAMES[err.code] ?? String(err.code), message: err.rawMessage };
  // findDetails decodes the details the schemas name and skips the others.
  for (const info of err.findDetails(ErrorInfoSchema)) {
    Object.assign(summary, { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } });
  }
  for (const retry of err.findDetails(RetryInfoSchema)) {
    const delay = retry.retryDelay;
    if (delay) summary.retry_delay_seconds = Number(delay.seconds) + delay.nanos / 1e9;
  }
  for (const badRequest of err.findDetails(BadRequestSchema)) {
    summary.field_violations = badRequest.fieldViolations.map((v) => v.field);
  }
  for (const requestInfo of err.findDetails(RequestInfoSchema)) {
    summary.request_id = requestInfo.requestId;
  }
  return summary;
}

/** JSON with sorted keys, like the other examples' output. */
function sortedJson(value) {
  return JSON.stringify(value, (_, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

const client = createClient(KtpService, transport(options()));
for (const referenceId of CALLS) {
  console.log(sortedJson(await getKtpResult(client, referenceId)));
}
console.log(sortedJson(await submitAndWait(client)));
console.log(sortedJson(await readMaskAndChecks(client)));
