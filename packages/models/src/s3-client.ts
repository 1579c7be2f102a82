import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from './settings.ts';

type S3Module = typeof import('@aws-sdk/client-s3');

let s3Module: Promise<S3Module> | undefined;
// Loaded on first use (≈100 ms): only S3 sources and `push` need it.
/** The AWS SDK's S3 module, imported once. */
export const loadS3 = (): Promise<S3Module> => (s3Module ??= import('@aws-sdk/client-s3'));

/** Where and how to reach one S3-compatible store. */
export interface S3Target {
  /** e.g. `https://s3api-eu-ro-1.runpod.io`; AWS when undefined. */
  readonly endpoint: string | undefined;
  readonly region: string | undefined;
}

/**
 * An S3 client for AWS or an S3-compatible store. Credentials come from the settings when set
 * (else the SDK's own chain: profile files, instance roles). Path-style addressing for custom
 * endpoints, and checksums only where a request requires them: S3-compatible stores (RunPod's
 * among them) do not all accept the SDK's default trailing checksums.
 */
export async function createS3Client(settings: S3Settings, target: S3Target): Promise<S3Client> {
  const { S3Client } = await loadS3();
  const endpoint = target.endpoint ?? settings.endpoint;
  return new S3Client({
    region: target.region ?? settings.region ?? 'us-east-1',
    ...(endpoint === undefined ? {} : { endpoint, forcePathStyle: true }),
    ...(settings.accessKeyId !== undefined && settings.secretAccessKey !== undefined
      ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey, ...(settings.sessionToken === undefined ? {} : { sessionToken: settings.sessionToken }) } }
      : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 5,
  });
}

/** The HTTP status of an SDK error, when it has one. */
export function s3Status(error: unknown): number | undefined {
  const meta = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata;
  return meta?.httpStatusCode;
}

/** RunPod's S3-compatible endpoint of a datacenter: `EU-RO-1` → `https://s3api-eu-ro-1.runpod.io`. */
export function runpodS3Endpoint(datacenter: string): string {
  return `https://s3api-${datacenter.toLowerCase()}.runpod.io`;
}

/** RunPod datacenter IDs: letters and digits in dash-separated groups, e.g. `EU-RO-1`, `US-KS-2`. */
export const DATACENTER_PATTERN = /^[A-Za-z]{2,4}(-[A-Za-z0-9]{1,4}){1,3}$/;
